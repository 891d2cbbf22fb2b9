//! `cargo xtask new-feature <name>`: create `crates/petsage-<name>` from the
//! templates in `xtask/templates/feature/` and wire it into the workspace.
//!
//! Everything is rendered and checked in memory first; then files are written,
//! and if any write fails, what was written is undone.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The templates: (path inside the new crate, text).
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/feature/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/feature/src/lib.rs.tmpl"),
    ),
    (
        "src/model.rs",
        include_str!("../templates/feature/src/model.rs.tmpl"),
    ),
    (
        "src/store.rs",
        include_str!("../templates/feature/src/store.rs.tmpl"),
    ),
    (
        "src/routes.rs",
        include_str!("../templates/feature/src/routes.rs.tmpl"),
    ),
    (
        "migrations/sqlite/1_create_table.sql",
        include_str!("../templates/feature/migrations/sqlite/1_create_table.sql.tmpl"),
    ),
    (
        "migrations/postgres/1_create_table.sql",
        include_str!("../templates/feature/migrations/postgres/1_create_table.sql.tmpl"),
    ),
    (
        "tests/api.rs",
        include_str!("../templates/feature/tests/api.rs.tmpl"),
    ),
];

/// Names taken by the workspace's own crates and folders.
const RESERVED: &[&str] = &["app", "core", "health", "tests", "test", "xtask"];

/// Rust's keywords, strict and reserved (2024 edition).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// Marks the end of the app's feature list; new registrations go just above it.
pub(crate) const FEATURE_LIST_MARKER: &str =
    "// `cargo xtask new-feature` adds new features above this line.";

/// Why the command stopped: a bad name (exit 2) or a failure (exit 1).
pub(crate) enum Error {
    /// The name or the request is not acceptable; nothing was written.
    Usage(String),
    /// Something else went wrong; nothing is left changed.
    Failed(String),
}

/// The forms of a feature name the templates need.
struct Names {
    /// `pet-profiles`
    name: String,
    /// `petsage-pet-profiles`
    krate: String,
    /// `petsage_pet_profiles`
    crate_ident: String,
    /// `pet_profiles`
    ident: String,
    /// `PET_PROFILES`
    upper_ident: String,
    /// `PetProfiles`
    type_name: String,
    /// `Pet Profiles`
    title: String,
}

impl Names {
    fn new(name: &str) -> Self {
        let words: Vec<&str> = name.split('-').collect();
        let capitalized: Vec<String> = words
            .iter()
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map_or_else(String::new, |c| {
                    c.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Self {
            name: name.to_owned(),
            krate: format!("petsage-{name}"),
            crate_ident: format!("petsage_{}", words.join("_")),
            ident: words.join("_"),
            upper_ident: words.join("_").to_uppercase(),
            type_name: capitalized.concat(),
            title: capitalized.join(" "),
        }
    }

    fn render(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{crate}}", &self.krate)
            .replace("{{crate_ident}}", &self.crate_ident)
            .replace("{{IDENT}}", &self.upper_ident)
            .replace("{{ident}}", &self.ident)
            .replace("{{Type}}", &self.type_name)
            .replace("{{title_lower}}", &self.title.to_lowercase())
            .replace("{{title}}", &self.title)
    }
}

/// Checks that `name` can be a feature: lowercase kebab-case, no keyword, not reserved.
pub(crate) fn validate(name: &str) -> Result<(), String> {
    let kebab = !name.is_empty()
        && name.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !kebab {
        return Err(format!(
            "{name:?} is not a feature name: use lowercase kebab-case starting with a letter, like pets or pet-profiles"
        ));
    }
    if let Some(word) = name.split('-').find(|word| KEYWORDS.contains(word)) {
        return Err(format!(
            "{name:?} is not a feature name: {word:?} is a Rust keyword"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "{name:?} is reserved: petsage-{name} or {name}/ is part of the workspace"
        ));
    }
    Ok(())
}

/// One change the command makes.
enum Change {
    Create {
        path: PathBuf,
        text: String,
    },
    Edit {
        path: PathBuf,
        before: String,
        after: String,
        line: String,
    },
}

/// Plans, then (unless `dry_run`) applies, the new feature `name` in the workspace at `root`.
pub(crate) fn run(root: &Path, name: &str, dry_run: bool) -> Result<(), Error> {
    validate(name).map_err(Error::Usage)?;
    let names = Names::new(name);
    let crate_dir = root.join("crates").join(&names.krate);
    if crate_dir.exists() {
        return Err(Error::Usage(format!(
            "feature {name:?} already exists: {} is there",
            rel(root, &crate_dir)
        )));
    }

    let changes = plan(root, &names, &crate_dir)?;
    let mut report = String::new();
    for change in &changes {
        match change {
            Change::Create { path, .. } => writeln!(report, "  create  {}", rel(root, path)),
            Change::Edit { path, line, .. } => {
                writeln!(report, "  edit    {}  (+ {})", rel(root, path), line.trim())
            }
        }
        .map_err(|e| Error::Failed(e.to_string()))?;
    }
    if dry_run {
        print!("would add feature {name} (dry run, nothing written):\n{report}");
        return Ok(());
    }
    apply(&changes, &crate_dir).map_err(Error::Failed)?;
    print!(
        "added feature {name}:\n{report}\nnext:\n  \
         1. shape the data in crates/{krate}/src/model.rs, the table in migrations/ (one\n     \
            folder per database), the queries in src/store.rs, the handlers in src/routes.rs\n  \
         2. cargo test -p {krate} (add -- --include-ignored to run the PostgreSQL tests too)\n  \
         3. cargo run -p petsage-app, then open http://127.0.0.1:8080/docs/ (tag {title:?});\n     \
            it stores in ./data/petsage.db, or in PETSAGE_DATABASE_URL=postgres://…\n  \
         4. cargo xtask ci before you push\n",
        krate = names.krate,
        title = names.title,
    );
    Ok(())
}

/// The new crate's files, rendered and formatted, as (path inside the crate, text).
pub(crate) fn render_crate(name: &str) -> Result<Vec<(&'static str, String)>, String> {
    let names = Names::new(name);
    TEMPLATES
        .iter()
        .map(|(path, template)| {
            let mut text = names.render(template);
            if text.contains("{{") {
                return Err(format!(
                    "template {path} has a placeholder this xtask does not fill"
                ));
            }
            if path.ends_with(".rs") {
                // Names of any length wrap differently: let rustfmt lay the code out.
                text = rustfmt(&text).map_err(|e| format!("rustfmt on {path}: {e}"))?;
            }
            Ok((*path, text))
        })
        .collect()
}

fn plan(root: &Path, names: &Names, crate_dir: &Path) -> Result<Vec<Change>, Error> {
    let mut changes: Vec<Change> = render_crate(&names.name)
        .map_err(Error::Failed)?
        .into_iter()
        .map(|(path, text)| Change::Create {
            path: crate_dir.join(path),
            text,
        })
        .collect();

    let workspace_line = format!(
        "{} = {{ path = \"crates/{}\" }}\n",
        names.krate, names.krate
    );
    changes.push(edit_after_last(
        root,
        "Cargo.toml",
        |l| l.starts_with("petsage-") && l.contains("path = \"crates/"),
        &workspace_line,
    )?);
    let app_line = format!("{}.workspace = true\n", names.krate);
    changes.push(edit_after_last(
        root,
        "crates/petsage-app/Cargo.toml",
        |l| l.starts_with("petsage-") && l.ends_with(".workspace = true"),
        &app_line,
    )?);
    changes.push(register(root, names)?);
    Ok(changes)
}

/// `text` formatted by the toolchain's rustfmt, in memory (stdin to stdout).
fn rustfmt(text: &str) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "writer panicked")?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// Inserts `line` after the last line matching `anchor` in `file`.
fn edit_after_last(
    root: &Path,
    file: &str,
    anchor: impl Fn(&str) -> bool,
    line: &str,
) -> Result<Change, Error> {
    let path = root.join(file);
    let before =
        fs::read_to_string(&path).map_err(|e| Error::Failed(format!("cannot read {file}: {e}")))?;
    let mut offset = None;
    let mut position = 0;
    for l in before.split_inclusive('\n') {
        position += l.len();
        if anchor(l.trim_end()) {
            offset = Some(position);
        }
    }
    let offset = offset.ok_or_else(|| {
        Error::Failed(format!(
            "cannot find where to add {:?} in {file}",
            line.trim()
        ))
    })?;
    let mut after = before.clone();
    after.insert_str(offset, line);
    Ok(Change::Edit {
        path,
        before,
        after,
        line: line.to_owned(),
    })
}

/// Adds `petsage_core::register::<petsage_<name>::<Type>>(),` above the marker in the app's feature list.
fn register(root: &Path, names: &Names) -> Result<Change, Error> {
    let file = "crates/petsage-app/src/lib.rs";
    let path = root.join(file);
    let before =
        fs::read_to_string(&path).map_err(|e| Error::Failed(format!("cannot read {file}: {e}")))?;
    let marker = before.find(FEATURE_LIST_MARKER).ok_or_else(|| {
        Error::Failed(format!(
            "cannot find the feature list marker in {file}: {FEATURE_LIST_MARKER:?}"
        ))
    })?;
    let line_start = before[..marker].rfind('\n').map_or(0, |i| i + 1);
    let indent = &before[line_start..marker];
    let line = format!(
        "{indent}petsage_core::register::<{}::{}>(),\n",
        names.crate_ident, names.type_name
    );
    let mut after = before.clone();
    after.insert_str(line_start, &line);
    Ok(Change::Edit {
        path,
        before,
        after,
        line,
    })
}

/// Writes every change; on the first failure, undoes the ones made and reports it.
fn apply(changes: &[Change], crate_dir: &Path) -> Result<(), String> {
    let mut edited: Vec<(&Path, &str)> = Vec::new();
    let result = changes.iter().try_for_each(|change| match change {
        Change::Create { path, text } => {
            let dir = path.parent().unwrap_or(crate_dir);
            fs::create_dir_all(dir)
                .and_then(|()| fs::write(path, text))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        Change::Edit {
            path,
            before,
            after,
            ..
        } => {
            edited.push((path, before));
            fs::write(path, after).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
    });
    if let Err(err) = result {
        for (path, before) in edited {
            let _ = fs::write(path, before);
        }
        let _ = fs::remove_dir_all(crate_dir);
        return Err(format!("{err}; nothing was changed"));
    }
    Ok(())
}

/// The feature the main test suite serves: `cargo xtask new-feature`'s output,
/// kept in `tests/notes/` so the platform is exercised by main's own tests.
pub(crate) const FIXTURE: (&str, &str) = ("notes", "tests/notes");

/// `cargo xtask fixture`: renders the templates again into the fixture folder.
pub(crate) fn refresh_fixture(root: &Path) -> Result<(), String> {
    let (name, dir) = FIXTURE;
    let dir = root.join(dir);
    for (path, text) in render_crate(name)? {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("rendered feature {name:?} into {}", rel(root, &dir));
    Ok(())
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kebab_case_and_rejects_the_rest() {
        for good in ["pets", "pet-profiles", "a1", "v2-api"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in [
            "Bad_Name", "1pets", "pets!", "", "-pets", "pets-", "pet--x", "PETS", "pets_x", "type",
            "my-fn", "app", "core", "health",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_take_every_form_the_templates_need() {
        let names = Names::new("pet-profiles");
        assert_eq!(names.krate, "petsage-pet-profiles");
        assert_eq!(names.crate_ident, "petsage_pet_profiles");
        assert_eq!(names.ident, "pet_profiles");
        assert_eq!(names.type_name, "PetProfiles");
        assert_eq!(names.title, "Pet Profiles");
        assert_eq!(
            names.render("{{Type}}Item at /{{name}}/{id}"),
            "PetProfilesItem at /pet-profiles/{id}"
        );
    }

    #[test]
    fn the_test_suites_feature_is_what_the_templates_render() {
        let (name, dir) = FIXTURE;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
        for (path, text) in render_crate(name).expect("renders") {
            let committed = fs::read_to_string(dir.join(path)).unwrap_or_default();
            assert!(
                committed == text,
                "{path} in {} differs from the templates: run `cargo xtask fixture`",
                dir.display()
            );
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let names = Names::new("pets");
        for (path, template) in TEMPLATES {
            assert!(!names.render(template).contains("{{"), "{path}");
        }
    }
}
