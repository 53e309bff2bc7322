fn main() -> std::process::ExitCode {
    idplan::cli::main()
}
