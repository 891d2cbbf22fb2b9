//! The app as the black-box tests run it: PetSage's features plus the
//! test-only ones, through the same command line as `petsage-app`.

fn main() -> std::process::ExitCode {
    petsage_app::cli::main(petsage_tests::features())
}
