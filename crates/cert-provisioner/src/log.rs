//! One line per event on stderr, which init scripts send to syslog. Never key material.

pub fn info(message: &str) {
    eprintln!("{message}");
}

pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}
