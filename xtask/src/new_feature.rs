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
    /// `pet profile`: one item, in running text
    singular: String,
    /// `a pet profile` (`an owner`)
    a_singular: String,
}

impl Names {
    /// The forms of `name`, one item of which is called `singular` (kebab-case).
    fn new(name: &str, singular: &str) -> Self {
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
            singular: singular.replace('-', " "),
            a_singular: format!(
                "{} {}",
                if singular.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                },
                singular.replace('-', " ")
            ),
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
            .replace("{{a_singular}}", &self.a_singular)
            .replace("{{singular}}", &self.singular)
    }
}

/// Whether `name` is lowercase kebab-case starting with a letter.
fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// One item of feature `name`: its last word made singular (`pets` → `pet`,
/// `boxes` → `box`, `categories` → `category`); a word that does not end in
/// `s` is kept (`people`), and `--singular` names what this rule gets wrong.
pub(crate) fn singular_of(name: &str) -> String {
    let (head, last) = name.rsplit_once('-').map_or(("", name), |(h, l)| (h, l));
    let one = if let Some(stem) = last.strip_suffix("ies").filter(|s| !s.is_empty()) {
        format!("{stem}y")
    } else if ["sses", "xes", "zes", "ches", "shes"]
        .iter()
        .any(|end| last.ends_with(end))
    {
        last[..last.len() - 2].to_owned()
    } else if last.ends_with('s') && !last.ends_with("ss") && last.len() > 1 {
        last[..last.len() - 1].to_owned()
    } else {
        last.to_owned()
    };
    if head.is_empty() {
        one
    } else {
        format!("{head}-{one}")
    }
}

/// Checks that `name` can be a feature: lowercase kebab-case, no keyword, not reserved.
pub(crate) fn validate(name: &str) -> Result<(), String> {
    if !is_kebab(name) {
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

/// Plans, then (unless `dry_run`) applies, the new feature `name` in the
/// workspace at `root`; one item is called `singular` (derived when `None`).
pub(crate) fn run(
    root: &Path,
    name: &str,
    singular: Option<&str>,
    dry_run: bool,
) -> Result<(), Error> {
    validate(name).map_err(Error::Usage)?;
    let singular = match singular {
        Some(word) if is_kebab(word) => word.to_owned(),
        Some(word) => {
            return Err(Error::Usage(format!(
                "--singular {word:?} is not a name: use lowercase kebab-case starting with a letter, like pet or pet-profile"
            )));
        }
        None => singular_of(name),
    };
    let names = Names::new(name, &singular);
    let taken = existing(root, &names);
    if !taken.is_empty() {
        return Err(Error::Usage(format!(
            "{} already exists: {}",
            names.krate,
            taken.join(", ")
        )));
    }
    let crate_dir = root.join("crates").join(&names.krate);

    let changes = plan(root, &names, &crate_dir)?;
    let mut report = format!(
        "  one item is called {:?} (--singular to change)\n",
        names.singular
    );
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
    let journal = apply(&changes).map_err(Error::Failed)?;
    if let Err(err) = workspace_loads(root) {
        let err = format!("cargo cannot read the workspace with the feature added ({err})");
        return Err(Error::Failed(match journal.undo() {
            Ok(()) => format!("{err}; nothing was changed"),
            Err(undo) => format!("{err}; {undo}"),
        }));
    }
    print!(
        "added feature {name}:\n{report}\nnext:\n  \
         1. shape the data in crates/{krate}/src/model.rs, the table in migrations/ (one\n     \
            folder per database), the queries in src/store.rs, the handlers in src/routes.rs\n  \
         2. cargo test -p {krate} (add -- --include-ignored to run the PostgreSQL tests too);\n     \
            its tests call the routes as a given caller: petsage_identity::testing::bearer\n  \
         3. every route needs a token with {name}:read or {name}:write. Try it in dev mode,\n     \
            with no OpenID provider:\n       \
              PETSAGE_AUTH_MODE=dev cargo run -p petsage-app\n       \
              cargo run -p petsage-app -- dev-token --sub alice --scope {name}:read,{name}:write\n     \
            then open http://127.0.0.1:8080/docs/ (tag {title:?}), Authorize with the token,\n     \
            and Try it out; it stores in ./data/petsage.db, or in PETSAGE_DATABASE_URL=postgres://…\n  \
         4. a health check of its own, or work after the response (background jobs and\n     \
            schedules): docs/architecture.md, \"The feature contract\"\n  \
         5. cargo xtask ci before you push\n",
        krate = names.krate,
        title = names.title,
    );
    Ok(())
}

/// What of the new crate's name is already in the workspace at `root`: its
/// folder, a crate of that name, a workspace member of that name, or its
/// dependency key in a manifest the command edits. Empty when it is free.
fn existing(root: &Path, names: &Names) -> Vec<String> {
    let mut taken = Vec::new();
    let folder = format!("crates/{}", names.krate);
    if root.join(&folder).exists() {
        taken.push(format!("folder {folder}"));
    }
    let members = workspace_members(root);
    for member in &members {
        let manifest = format!("{member}/Cargo.toml");
        let text = fs::read_to_string(root.join(&manifest)).unwrap_or_default();
        if package_name(&text).as_deref() == Some(names.krate.as_str()) {
            taken.push(format!("crate in {manifest}"));
        }
    }
    for member in &members {
        let last = member.rsplit('/').next().unwrap_or(member);
        if *member != folder && (last == names.krate || last == names.name) {
            taken.push(format!("workspace member {member}"));
        }
    }
    for manifest in ["Cargo.toml", "crates/petsage-app/Cargo.toml"] {
        let text = fs::read_to_string(root.join(manifest)).unwrap_or_default();
        if text
            .lines()
            .any(|line| toml_key(line) == Some(names.krate.as_str()))
        {
            taken.push(format!("dependency key in {manifest}"));
        }
    }
    taken
}

/// The root manifest's `members`, with `dir/*` expanded to the folders in
/// `dir` that hold a Cargo.toml.
fn workspace_members(root: &Path) -> Vec<String> {
    let text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let list = text.find("members").and_then(|start| {
        let rest = &text[start..];
        let open = rest.find('[')? + 1;
        let close = open + rest[open..].find(']')?;
        Some(&rest[open..close])
    });
    let Some(list) = list else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in list.split('"').skip(1).step_by(2) {
        if let Some(dir) = entry.strip_suffix("/*") {
            let mut found: Vec<String> = fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                .collect();
            found.sort();
            members.extend(found);
        } else {
            members.push(entry.to_owned());
        }
    }
    members
}

/// The `name` of a manifest's `[package]`.
fn package_name(manifest: &str) -> Option<String> {
    let package = &manifest[manifest.find("[package]")?..];
    package
        .lines()
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .find(|line| toml_key(line) == Some("name"))
        .and_then(|line| line.split('"').nth(1))
        .map(str::to_owned)
}

/// The first part of a TOML line's key: `petsage-x` for `petsage-x = …`
/// and `petsage-x.workspace = true`; `None` for other lines.
fn toml_key(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with(['#', '[']) {
        return None;
    }
    let (key, _) = line.split_once('=')?;
    let key = key.split('.').next()?.trim();
    Some(key.trim_matches('"'))
}

/// Whether cargo still reads the workspace at `root` (`cargo metadata`, no
/// dependency resolution): the last check before the command reports success.
fn workspace_loads(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .map_or("cargo metadata failed", |line| {
            line.trim().trim_start_matches("error: ")
        })
        .to_owned())
}

/// The new crate's files, rendered and formatted, as (path inside the crate, text).
pub(crate) fn render_crate(
    name: &str,
    singular: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let names = Names::new(name, singular);
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
    let singular = names.singular.replace(' ', "-");
    let mut changes: Vec<Change> = render_crate(&names.name, &singular)
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

/// What the command wrote, so that it can be undone: files edited (with
/// their text before), files created and folders created, in order.
#[derive(Default)]
struct Journal {
    edited: Vec<(PathBuf, String)>,
    created_files: Vec<PathBuf>,
    created_dirs: Vec<PathBuf>,
}

impl Journal {
    /// Creates `path` with `text`, and each missing folder above it; refuses
    /// to overwrite a file.
    fn create(&mut self, path: &Path, text: &str) -> Result<(), String> {
        let mut missing: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
            .collect();
        missing.reverse();
        for dir in missing {
            fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            self.created_dirs.push(dir.to_path_buf());
        }
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut file| {
                self.created_files.push(path.to_path_buf());
                std::io::Write::write_all(&mut file, text.as_bytes())
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Replaces the text of `path`, which was `before`, with `after`.
    fn edit(&mut self, path: &Path, before: &str, after: &str) -> Result<(), String> {
        self.edited.push((path.to_path_buf(), before.to_owned()));
        fs::write(path, after).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Restores every edited file and removes every created file and folder,
    /// last first; `Err` names what could not be undone.
    fn undo(self) -> Result<(), String> {
        let mut left = Vec::new();
        for (path, before) in self.edited.iter().rev() {
            if fs::write(path, before).is_err() {
                left.push(format!("{} is edited", path.display()));
            }
        }
        for path in self.created_files.iter().rev() {
            if fs::remove_file(path).is_err() && path.exists() {
                left.push(format!("{} is left", path.display()));
            }
        }
        for dir in self.created_dirs.iter().rev() {
            if fs::remove_dir(dir).is_err() && dir.exists() {
                left.push(format!("{} is left", dir.display()));
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("could not undo everything: {}", left.join(", ")))
        }
    }
}

/// Writes every change; on the first failure, undoes the ones made and reports it.
fn apply(changes: &[Change]) -> Result<Journal, String> {
    let mut journal = Journal::default();
    let result = changes.iter().try_for_each(|change| match change {
        Change::Create { path, text } => journal.create(path, text),
        Change::Edit {
            path,
            before,
            after,
            ..
        } => journal.edit(path, before, after),
    });
    match result {
        Ok(()) => Ok(journal),
        Err(err) => match journal.undo() {
            Ok(()) => Err(format!("{err}; nothing was changed")),
            Err(undo) => Err(format!("{err}; {undo}")),
        },
    }
}

/// The feature the main test suite serves: `cargo xtask new-feature`'s output,
/// kept in `tests/notes/` so the platform is exercised by main's own tests.
pub(crate) const FIXTURE: (&str, &str) = ("notes", "tests/notes");

/// `cargo xtask fixture`: renders the templates again into the fixture folder.
pub(crate) fn refresh_fixture(root: &Path) -> Result<(), String> {
    let (name, dir) = FIXTURE;
    let dir = root.join(dir);
    for (path, text) in render_crate(name, &singular_of(name))? {
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
        let names = Names::new("pet-profiles", "pet-profile");
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
        for (path, text) in render_crate(name, &singular_of(name)).expect("renders") {
            let committed = fs::read_to_string(dir.join(path)).unwrap_or_default();
            assert!(
                committed == text,
                "{path} in {} differs from the templates: run `cargo xtask fixture`",
                dir.display()
            );
        }
    }

    #[test]
    fn the_singular_is_derived_from_the_last_word() {
        for (name, one) in [
            ("pets", "pet"),
            ("boxes", "box"),
            ("categories", "category"),
            ("classes", "class"),
            ("pet-profiles", "pet-profile"),
            ("people", "people"),
            ("glass", "glass"),
            ("s", "s"),
        ] {
            assert_eq!(singular_of(name), one, "{name}");
        }
        let names = Names::new("owners", "owner");
        assert_eq!(
            names.render("Create {{a_singular}}; fetch one {{singular}}"),
            "Create an owner; fetch one owner"
        );
        let names = Names::new("pet-profiles", "pet-profile");
        assert_eq!(
            names.render("Create {{a_singular}}"),
            "Create a pet profile"
        );
    }

    /// A folder under the system's temporary one, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xtask-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("mkdir");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Every file and folder under `root`, with each file's text.
    fn tree(root: &Path) -> Vec<(PathBuf, Option<String>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("readdir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    out.push((path.clone(), None));
                    stack.push(path);
                } else {
                    out.push((path.clone(), fs::read_to_string(&path).ok()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_failure_in_the_middle_undoes_every_write() {
        let tmp = TempDir::new("rollback");
        let root = &tmp.0;
        fs::write(root.join("Cargo.toml"), "[workspace]\n").expect("write");
        fs::write(root.join("blocker"), "a file, not a folder\n").expect("write");
        let before = tree(root);
        let changes = [
            Change::Edit {
                path: root.join("Cargo.toml"),
                before: "[workspace]\n".to_owned(),
                after: "[workspace]\nedited = true\n".to_owned(),
                line: "edited = true\n".to_owned(),
            },
            Change::Create {
                path: root.join("crates/petsage-x/src/lib.rs"),
                text: "//! new\n".to_owned(),
            },
            // Its folder would be a file's child: this write fails.
            Change::Create {
                path: root.join("blocker/lib.rs"),
                text: "//! never\n".to_owned(),
            },
        ];
        let err = apply(&changes).err().expect("the third change fails");
        assert!(err.ends_with("nothing was changed"), "{err}");
        assert_eq!(tree(root), before, "everything written was undone");

        let journal = apply(&changes[..2]).expect("two changes apply");
        assert_ne!(tree(root), before);
        journal.undo().expect("undone");
        assert_eq!(tree(root), before, "a later failure is undone too");
    }

    #[test]
    fn a_name_in_use_anywhere_is_named_in_one_line() {
        let tmp = TempDir::new("existing");
        let root = &tmp.0;
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\n  \"crates/*\",\n  \"tests/notes\",\n]\n\n\
             [workspace.dependencies]\npetsage-notes = { path = \"tests/notes\" }\n",
        );
        write(
            "crates/petsage-app/Cargo.toml",
            "[package]\nname = \"petsage-app\"\n\n[dependencies]\npetsage-keys.workspace = true\n",
        );
        write(
            "crates/petsage-db/Cargo.toml",
            "[package]\nname = \"petsage-db\"\n",
        );
        write(
            "tests/notes/Cargo.toml",
            "[package]\nname = \"petsage-notes\"\n",
        );
        let taken = |name: &str| existing(root, &Names::new(name, name));
        assert_eq!(
            taken("notes"),
            [
                "crate in tests/notes/Cargo.toml",
                "workspace member tests/notes",
                "dependency key in Cargo.toml"
            ]
        );
        assert_eq!(
            taken("db"),
            [
                "folder crates/petsage-db",
                "crate in crates/petsage-db/Cargo.toml"
            ]
        );
        assert_eq!(
            taken("keys"),
            ["dependency key in crates/petsage-app/Cargo.toml"]
        );
        assert!(taken("pets").is_empty());
    }

    #[test]
    fn every_placeholder_is_filled() {
        let names = Names::new("pets", "pet");
        for (path, template) in TEMPLATES {
            assert!(!names.render(template).contains("{{"), "{path}");
        }
    }
}
