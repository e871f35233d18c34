fn main() -> std::process::ExitCode {
    if std::env::args_os().len() <= 1 {
        return match captioner_app::run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("captioner: {}", captioner::jobs::report(e.as_ref()));
                std::process::ExitCode::FAILURE
            }
        };
    }
    captioner_cli::main()
}
