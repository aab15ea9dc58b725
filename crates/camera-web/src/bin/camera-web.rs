//! `camera-web`: see [`camera_web::entry`].

fn main() -> std::process::ExitCode {
    camera_web::entry::main_entry()
}
