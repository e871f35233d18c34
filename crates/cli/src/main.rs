fn main() -> std::process::ExitCode {
    if std::env::args_os().len() <= 1 {
        return match captioner_app::run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("captioner: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    captioner_cli::main()
}
