//! The route table: every path, its methods, what each does and who may call it. Written once:
//! dispatch, the 405 answers (with `Allow`) and the OpenAPI contract test all read it.

use hyper::Method;

use crate::domain::certificates::Role;

/// HTTP methods the API uses. (HEAD is answered wherever GET is.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn of(method: &Method) -> Option<Self> {
        match *method {
            Method::GET | Method::HEAD => Some(Self::Get),
            Method::POST => Some(Self::Post),
            Method::PUT => Some(Self::Put),
            Method::DELETE => Some(Self::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the camera (reading, first-run setup, logging in and out).
    Anyone,
    /// The admin: HTTP Basic (`admin`) or a session cookie with its CSRF token.
    Admin,
}

/// What a route does; `api::dispatch` runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Page,
    Script,
    Style,
    CaCertificate,
    Session,
    Events,
    Setup,
    Login,
    Logout,
    CertificateStatus,
    /// An installer's certificate for the role: upload, restore (delete), its CSR.
    Upload(Role),
    Restore(Role),
    RequestDownload(Role),
    RequestCreate(Role),
    /// Automatic enrollment of the role's certificate.
    EnrollmentStatus(Role),
    EnrollmentConfigure(Role),
    EnrollmentStop(Role),
    Dot1xStatus,
    Dot1xConfigure,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub verb: Verb,
    pub endpoint: Endpoint,
    pub access: Access,
}

const fn route(path: &'static str, verb: Verb, endpoint: Endpoint, access: Access) -> Route {
    Route { path, verb, endpoint, access }
}

use Access::{Admin, Anyone};
use Verb::{Delete, Get, Post, Put};

/// Every route of the HTTPS server.
pub const ROUTES: &[Route] = &[
    route("/", Get, Endpoint::Page, Anyone),
    route("/index.html", Get, Endpoint::Page, Anyone),
    route("/app.js", Get, Endpoint::Script, Anyone),
    route("/app.css", Get, Endpoint::Style, Anyone),
    route("/cacert.crt", Get, Endpoint::CaCertificate, Anyone),
    route("/api/v1/session", Get, Endpoint::Session, Anyone),
    route("/api/v1/events", Get, Endpoint::Events, Admin),
    route("/api/v1/setup", Post, Endpoint::Setup, Anyone),
    route("/api/v1/login", Post, Endpoint::Login, Anyone),
    route("/api/v1/logout", Post, Endpoint::Logout, Anyone),
    route("/api/v1/certificate", Get, Endpoint::CertificateStatus, Anyone),
    route("/api/v1/certificate", Put, Endpoint::Upload(Role::Https), Admin),
    route("/api/v1/certificate", Delete, Endpoint::Restore(Role::Https), Admin),
    route("/api/v1/csr", Get, Endpoint::RequestDownload(Role::Https), Anyone),
    route("/api/v1/csr", Post, Endpoint::RequestCreate(Role::Https), Admin),
    route("/api/v1/enrollment", Get, Endpoint::EnrollmentStatus(Role::Https), Admin),
    route("/api/v1/enrollment", Put, Endpoint::EnrollmentConfigure(Role::Https), Admin),
    route("/api/v1/enrollment", Delete, Endpoint::EnrollmentStop(Role::Https), Admin),
    route("/api/v1/dot1x", Get, Endpoint::Dot1xStatus, Admin),
    route("/api/v1/dot1x", Put, Endpoint::Dot1xConfigure, Admin),
    route("/api/v1/dot1x/certificate", Put, Endpoint::Upload(Role::Dot1x), Admin),
    route("/api/v1/dot1x/certificate", Delete, Endpoint::Restore(Role::Dot1x), Admin),
    route("/api/v1/dot1x/csr", Get, Endpoint::RequestDownload(Role::Dot1x), Anyone),
    route("/api/v1/dot1x/csr", Post, Endpoint::RequestCreate(Role::Dot1x), Admin),
    route("/api/v1/dot1x/enrollment", Get, Endpoint::EnrollmentStatus(Role::Dot1x), Admin),
    route("/api/v1/dot1x/enrollment", Put, Endpoint::EnrollmentConfigure(Role::Dot1x), Admin),
    route("/api/v1/dot1x/enrollment", Delete, Endpoint::EnrollmentStop(Role::Dot1x), Admin),
];

/// What the table says about a request.
#[derive(Debug)]
pub enum Lookup {
    Found(&'static Route),
    /// The path exists, not with this method: the methods it has, for `Allow`.
    WrongMethod(String),
    NotFound,
}

pub fn lookup(path: &str, method: &Method) -> Lookup {
    let mut on_path = ROUTES.iter().filter(|r| r.path == path).peekable();
    if on_path.peek().is_none() {
        return Lookup::NotFound;
    }
    let verb = Verb::of(method);
    let mut allowed = Vec::new();
    for route in on_path {
        if Some(route.verb) == verb {
            return Lookup::Found(route);
        }
        allowed.push(route.verb.as_str());
        if route.verb == Get {
            allowed.push("HEAD");
        }
    }
    Lookup::WrongMethod(allowed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_and_method_is_listed_once_and_changes_need_the_admin() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..].iter().any(|o| o.path == r.path && o.verb == r.verb),
                "{} {:?} twice",
                r.path,
                r.verb
            );
            let admin_reads =
                matches!(r.endpoint, Endpoint::Events | Endpoint::EnrollmentStatus(_) | Endpoint::Dot1xStatus);
            let reads_or_logs_in = (r.verb == Get && !admin_reads)
                || matches!(r.endpoint, Endpoint::Setup | Endpoint::Login | Endpoint::Logout);
            assert_eq!(r.access == Anyone, reads_or_logs_in, "{} {:?}", r.path, r.verb);
        }
    }

    #[test]
    fn lookup_finds_routes_and_names_the_allowed_methods() {
        assert!(
            matches!(lookup("/api/v1/certificate", &Method::PUT), Lookup::Found(r) if r.endpoint == Endpoint::Upload(Role::Https))
        );
        assert!(
            matches!(lookup("/cacert.crt", &Method::HEAD), Lookup::Found(r) if r.endpoint == Endpoint::CaCertificate)
        );
        match lookup("/api/v1/csr", &Method::PATCH) {
            Lookup::WrongMethod(allow) => assert_eq!(allow, "GET, HEAD, POST"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(lookup("/nothing", &Method::GET), Lookup::NotFound));
    }
}
