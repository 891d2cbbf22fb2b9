//! The `petsage-app` binary: parse the command line, then serve PetSage's features.

fn main() -> std::process::ExitCode {
    petsage_app::cli::main(petsage_app::features())
}
