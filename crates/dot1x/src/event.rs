//! What wpa_supplicant says on its control socket: unsolicited events (`<3>CTRL-EVENT-...`) and
//! the answer to `STATUS`. Pure functions; the texts they read are outside input (a server
//! certificate's subject is the server's to choose), kept as sent and escaped where shown.

/// One event of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The authenticator sent the first EAP request: an EAP exchange began.
    EapStarted,
    /// The EAP method was selected (`TLS`).
    EapMethod {
        method: String,
    },
    EapSuccess,
    EapFailure,
    /// The server's certificate was refused (not trusted, or not the name of `domain_match`).
    ServerCertError {
        depth: u32,
        subject: String,
        error: String,
    },
    /// A certificate the server sent.
    PeerCert {
        depth: u32,
        subject: String,
    },
    /// EAP status (`status='remote certificate verification' parameter='success'`).
    EapStatus {
        status: String,
        parameter: String,
    },
    Connected,
    Disconnected,
    /// wpa_supplicant is exiting.
    Terminating,
    /// Any other message.
    Other,
}

/// Reads one unsolicited message (`<level>NAME text`); None if it is not one (a command's answer).
pub fn parse_event(message: &str) -> Option<Event> {
    let message = message.trim_end_matches(['\n', '\0']);
    let (_, body) = message.strip_prefix('<')?.split_once('>')?;
    let (name, rest) = body.split_once(' ').unwrap_or((body, ""));
    Some(match name {
        "CTRL-EVENT-EAP-STARTED" => Event::EapStarted,
        "CTRL-EVENT-EAP-METHOD" => Event::EapMethod {
            method: rest.split_once('(').and_then(|(_, m)| m.split_once(')')).map(|(m, _)| m).unwrap_or("").to_owned(),
        },
        "CTRL-EVENT-EAP-SUCCESS" => Event::EapSuccess,
        "CTRL-EVENT-EAP-FAILURE" => Event::EapFailure,
        "CTRL-EVENT-EAP-TLS-CERT-ERROR" => {
            // reason=1 depth=0 subject='/CN=...' err='unable to get local issuer certificate'
            let (subject, error) = quoted_pair(rest, "subject='", "' err='").unwrap_or_default();
            Event::ServerCertError { depth: number(rest, "depth="), subject, error }
        }
        "CTRL-EVENT-EAP-PEER-CERT" => {
            // depth=0 subject='/CN=...' hash=<hex>  (or cert=<hex>)
            let subject = ["' hash=", "' cert="]
                .iter()
                .find_map(|end| quoted_pair(rest, "subject='", end))
                .map(|(subject, _)| subject)
                .unwrap_or_default();
            Event::PeerCert { depth: number(rest, "depth="), subject }
        }
        "CTRL-EVENT-EAP-STATUS" => {
            let (status, parameter) = quoted_pair(rest, "status='", "' parameter='").unwrap_or_default();
            Event::EapStatus { status, parameter }
        }
        "CTRL-EVENT-CONNECTED" => Event::Connected,
        "CTRL-EVENT-DISCONNECTED" => Event::Disconnected,
        "CTRL-EVENT-TERMINATING" => Event::Terminating,
        _ => Event::Other,
    })
}

/// The text after `start` up to the LAST `separator` (the first value is the outside one and may
/// hold anything, the separator too), and what follows it without its closing quote.
fn quoted_pair(text: &str, start: &str, separator: &str) -> Option<(String, String)> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    let split = rest.rfind(separator)?;
    let second = &rest[split + separator.len()..];
    Some((rest[..split].to_owned(), second.strip_suffix('\'').unwrap_or(second).to_owned()))
}

fn number(text: &str, key: &str) -> u32 {
    text.split(' ').find_map(|word| word.strip_prefix(key)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The parts of `STATUS` that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub wpa_state: Option<String>,
    /// `Supplicant PAE state` (IEEE 802.1X): DISCONNECTED, CONNECTING, AUTHENTICATING, HELD,
    /// AUTHENTICATED, RESTART ...
    pub pae_state: Option<String>,
    /// `EAP state`: IDLE, METHOD, SUCCESS, FAILURE ...
    pub eap_state: Option<String>,
    /// `suppPortStatus=Authorized`.
    pub port_authorized: bool,
}

/// Reads the answer to `STATUS` (`key=value` lines).
pub fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "wpa_state" => status.wpa_state = Some(value.to_owned()),
            "Supplicant PAE state" => status.pae_state = Some(value.to_owned()),
            "EAP state" => status.eap_state = Some(value.to_owned()),
            "suppPortStatus" => status.port_authorized = value == "Authorized",
            _ => {}
        }
    }
    status
}

/// A network of `LIST_NETWORKS`: its id and whether it is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub id: u32,
    pub disabled: bool,
}

/// Reads the answer to `LIST_NETWORKS` (a header line, then `id\tssid\tbssid\tflags` lines).
pub fn parse_networks(text: &str) -> Vec<Network> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let id = fields.next()?.trim().parse().ok()?;
            Some(Network { id, disabled: fields.nth(2).is_some_and(|flags| flags.contains("[DISABLED]")) })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Captured from wpa_supplicant 2.10 (Debian bookworm) on a wired link against hostapd 2.10.
    const SUCCESS: &[&str] = &[
        "<3>CTRL-EVENT-EAP-STARTED EAP authentication started",
        "<3>CTRL-EVENT-EAP-STATUS status='started' parameter=''",
        "<3>CTRL-EVENT-EAP-PROPOSED-METHOD vendor=0 method=13",
        "<3>CTRL-EVENT-EAP-STATUS status='accept proposed method' parameter='TLS'",
        "<3>CTRL-EVENT-EAP-METHOD EAP vendor 0 method 13 (TLS) selected",
        "<3>CTRL-EVENT-EAP-PEER-CERT depth=1 subject='/CN=Site CA' hash=5f63f18a52e5f604d317f5519a28f6b5fd5c4113e1de49bf747f3730b654ca0d",
        "<3>CTRL-EVENT-EAP-PEER-CERT depth=0 subject='/CN=radius.site.example' cert=308201a93082014fa003020102",
        "<3>CTRL-EVENT-EAP-PEER-ALT depth=0 DNS:radius.site.example",
        "<3>CTRL-EVENT-EAP-STATUS status='remote certificate verification' parameter='success'",
        "<3>CTRL-EVENT-EAP-STATUS status='completion' parameter='success'",
        "<3>CTRL-EVENT-EAP-SUCCESS EAP authentication completed successfully",
        "<3>CTRL-EVENT-CONNECTED - Connection to 01:80:c2:00:00:03 completed [id=0 id_str=]",
    ];

    #[test]
    fn reads_a_successful_exchange() {
        let events: Vec<Event> = SUCCESS.iter().map(|m| parse_event(m).unwrap()).collect();
        assert_eq!(events[0], Event::EapStarted);
        assert_eq!(events[1], Event::EapStatus { status: "started".into(), parameter: String::new() });
        assert_eq!(events[2], Event::Other);
        assert_eq!(events[4], Event::EapMethod { method: "TLS".into() });
        assert_eq!(events[5], Event::PeerCert { depth: 1, subject: "/CN=Site CA".into() });
        assert_eq!(events[6], Event::PeerCert { depth: 0, subject: "/CN=radius.site.example".into() });
        assert_eq!(
            events[8],
            Event::EapStatus { status: "remote certificate verification".into(), parameter: "success".into() }
        );
        assert_eq!(events[10], Event::EapSuccess);
        assert_eq!(events[11], Event::Connected);
    }

    #[test]
    fn reads_refused_server_certificates() {
        let untrusted = "<3>CTRL-EVENT-EAP-TLS-CERT-ERROR reason=1 depth=0 subject='/CN=radius.site.example' \
                         err='unable to get local issuer certificate'";
        assert_eq!(
            parse_event(untrusted).unwrap(),
            Event::ServerCertError {
                depth: 0,
                subject: "/CN=radius.site.example".into(),
                error: "unable to get local issuer certificate".into()
            }
        );
        let mismatch =
            "<3>CTRL-EVENT-EAP-TLS-CERT-ERROR reason=10 depth=0 subject='/CN=radius.site.example' err='Domain mismatch'";
        assert!(
            matches!(parse_event(mismatch).unwrap(), Event::ServerCertError { error, .. } if error == "Domain mismatch")
        );
        // A subject is the server's to choose: it may hold the separator itself.
        let forged =
            "<3>CTRL-EVENT-EAP-TLS-CERT-ERROR reason=1 depth=0 subject='/CN=x' err='ok' err='self-signed certificate'";
        assert!(
            matches!(parse_event(forged).unwrap(), Event::ServerCertError { subject, error, .. } if subject == "/CN=x' err='ok" && error == "self-signed certificate")
        );
        assert_eq!(parse_event("<3>CTRL-EVENT-EAP-FAILURE EAP authentication failed").unwrap(), Event::EapFailure);
    }

    #[test]
    fn answers_and_damaged_text_are_not_events() {
        for text in ["OK\n", "FAIL\n", "PONG\n", "", "<3", "3>CTRL-EVENT-EAP-SUCCESS"] {
            assert_eq!(parse_event(text), None, "{text:?}");
        }
        assert_eq!(parse_event("<3>CTRL-EVENT-TERMINATING ").unwrap(), Event::Terminating);
        assert_eq!(
            parse_event("<3>CTRL-EVENT-DISCONNECTED bssid=01:80:c2:00:00:03 reason=3 locally_generated=1").unwrap(),
            Event::Disconnected
        );
        assert_eq!(
            parse_event("<3>CTRL-EVENT-EAP-TLS-CERT-ERROR garbage").unwrap(),
            Event::ServerCertError { depth: 0, subject: String::new(), error: String::new() }
        );
    }

    #[test]
    fn reads_status() {
        let text = "bssid=01:80:c2:00:00:03\nfreq=0\nssid=\nid=0\nmode=station\npairwise_cipher=NONE\n\
                    group_cipher=NONE\nkey_mgmt=IEEE 802.1X (no WPA)\nwpa_state=COMPLETED\n\
                    address=ee:84:63:a2:f0:6e\nSupplicant PAE state=AUTHENTICATED\nsuppPortStatus=Authorized\n\
                    EAP state=SUCCESS\nselectedMethod=13 (EAP-TLS)\neap_tls_version=TLSv1.2\n\
                    uuid=63868ead-6daa-582b-8956-26f5831f2975\n";
        assert_eq!(
            parse_status(text),
            Status {
                wpa_state: Some("COMPLETED".into()),
                pae_state: Some("AUTHENTICATED".into()),
                eap_state: Some("SUCCESS".into()),
                port_authorized: true
            }
        );
        let held = parse_status(
            "wpa_state=ASSOCIATED\nSupplicant PAE state=HELD\nsuppPortStatus=Unauthorized\nEAP state=FAILURE\n",
        );
        assert!(!held.port_authorized);
        assert_eq!(held.pae_state.as_deref(), Some("HELD"));
        assert_eq!(parse_status("wpa_state=DISCONNECTED\naddress=f2:7e:65:64:91:e5\n").pae_state, None);
    }

    #[test]
    fn reads_networks() {
        assert_eq!(parse_networks("network id / ssid / bssid / flags\n"), []);
        assert_eq!(
            parse_networks("network id / ssid / bssid / flags\n0\t\tany\t[CURRENT]\n3\t\tany\t[DISABLED]\n"),
            [Network { id: 0, disabled: false }, Network { id: 3, disabled: true }]
        );
    }
}
