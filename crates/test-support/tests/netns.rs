//! The helper itself: what the namespace contains, that failures inside reach the parent, and that
//! `ip` refuses to touch the host.

use std::time::Duration;

use camera_test_support::netns::{
    enter_private_netns, in_private_netns, inside_private_netns, ip, try_ip, wait_for_ipv6_settled, NetnsSetup,
};

#[test]
fn default_setup_has_lo_and_the_veth_pair() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let links = ip(&["-o", "link", "show"]);
    let names: Vec<&str> =
        links.lines().filter_map(|l| l.split(':').nth(1)).map(|n| n.trim().split('@').next().unwrap_or("")).collect();
    assert_eq!(names.len(), 3, "{links}");
    for name in ["lo", "cam0", "peer0"] {
        assert!(names.contains(&name), "{links}");
    }
    let addrs = ip(&["-o", "addr", "show", "dev", "cam0"]);
    assert!(addrs.contains("inet 10.77.0.2/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd77::2/64"), "{addrs}");
    assert!(ip(&["-o", "addr", "show", "dev", "lo"]).contains("127.0.0.1/8"));
    // Adding addresses later works, and DAD finishes.
    ip(&["addr", "add", "10.77.1.9/24", "dev", "cam0"]);
    assert!(ip(&["-o", "-4", "addr", "show", "dev", "cam0"]).contains("10.77.1.9/24"));
    assert!(wait_for_ipv6_settled(Duration::from_secs(10)));
}

#[test]
fn custom_setup_and_wait_for_dad() {
    let setup = NetnsSetup::loopback_only()
        .ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"])
        .ip(&["link", "set", "eth0", "up"])
        .ip(&["link", "set", "eth1", "up"])
        .ip(&["-6", "addr", "add", "fd78::1/64", "dev", "eth0"])
        .wait_for_dad(true);
    if !enter_private_netns(&setup) {
        return;
    }
    assert!(ip(&["-6", "addr", "show", "tentative"]).trim().is_empty());
    assert!(ip(&["-o", "addr", "show", "dev", "eth0"]).contains("fd78::1/64"));
}

#[test]
fn ip_refuses_outside_a_private_namespace() {
    if inside_private_netns() {
        return;
    }
    let err = try_ip(&["addr", "add", "10.77.1.9/24", "dev", "eth0"]).expect_err("must refuse");
    assert!(err.contains("refusing"), "{err}");
}

#[test]
fn failing_body_inside() {
    // Passes when run normally; fails when run inside a namespace, which is how
    // `failure_inside_fails_the_parent` runs it.
    assert!(!inside_private_netns(), "deliberate failure inside the namespace");
}

#[test]
#[should_panic(expected = "failed inside its network namespace")]
fn failure_inside_fails_the_parent() {
    if inside_private_netns() {
        return;
    }
    in_private_netns("failing_body_inside", &NetnsSetup::default());
}

#[test]
#[should_panic(expected = "ran no test named")]
fn wrong_test_name_is_reported() {
    if inside_private_netns() {
        return;
    }
    in_private_netns("no_such_test", &NetnsSetup::default());
}

mod inside_a_module {
    use super::*;

    /// The name taken from the thread is the one libtest filters on, module path included.
    #[test]
    fn the_thread_name_is_the_test_name() {
        if !enter_private_netns(&NetnsSetup::loopback_only()) {
            return;
        }
        assert_eq!(
            std::env::var(camera_test_support::netns::INSIDE_ENV).unwrap(),
            "inside_a_module::the_thread_name_is_the_test_name"
        );
    }
}

#[test]
#[should_panic(expected = "on the test's own thread")]
fn enter_private_netns_off_the_test_thread_is_refused() {
    let outcome = std::thread::spawn(|| enter_private_netns(&NetnsSetup::default())).join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
