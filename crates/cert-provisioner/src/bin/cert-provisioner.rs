//! `cert-provisioner`: see [`cert_provisioner::entry`].

fn main() -> std::process::ExitCode {
    cert_provisioner::entry::main_entry()
}
