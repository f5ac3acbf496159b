//! The page templates: built in, each replaceable by a file of the same name in
//! `[ui] templates_dir`. HTML autoescaping is forced on every template, whatever its
//! name, so an operator's template cannot turn it off by choosing a file extension.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::path::Path;

/// Every template a page is rendered from, with its built-in source.
const BUILT_IN: [(&str, &str); 14] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    (
        "second_factor.html",
        include_str!("../templates/second_factor.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    ("continue.html", include_str!("../templates/continue.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("device.html", include_str!("../templates/device.html")),
    (
        "resources.html",
        include_str!("../templates/resources.html"),
    ),
    (
        "device_confirm.html",
        include_str!("../templates/device_confirm.html"),
    ),
    (
        "device_done.html",
        include_str!("../templates/device_done.html"),
    ),
    ("passkeys.html", include_str!("../templates/passkeys.html")),
    (
        "passkey_added.html",
        include_str!("../templates/passkey_added.html"),
    ),
];

/// The stylesheet every page links to, served from `/assets/gatehouse.css`.
pub(crate) const STYLESHEET: &str = include_str!("../templates/gatehouse.css");

/// The script of the passkey pages (login and enrolment), served from
/// `/assets/passkey.js`: no page has inline script.
pub(crate) const PASSKEY_SCRIPT: &str = include_str!("../templates/passkey.js");

/// The compiled templates of one config generation.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The names of the page templates, each of which `[ui] templates_dir` may
    /// override with a file of that name.
    pub(crate) fn names() -> impl Iterator<Item = &'static str> {
        BUILT_IN.iter().map(|(name, _)| *name)
    }

    /// Compiles the built-in templates, replacing those that `dir` has a file for.
    /// `read` reads an override (so the config loader can watch it). Returns every
    /// problem found.
    pub(crate) fn load(
        dir: Option<&Path>,
        mut read: impl FnMut(&Path) -> std::io::Result<String>,
    ) -> Result<Self, Vec<String>> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        let mut problems = Vec::new();
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            problems.push(format!("{} is not a directory", dir.display()));
        }
        for (name, built_in) in BUILT_IN {
            let override_path = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source = match override_path {
                Some(path) => match read(&path) {
                    Ok(text) => text,
                    Err(e) => {
                        problems.push(format!("cannot read {}: {e}", path.display()));
                        continue;
                    }
                },
                None => built_in.to_owned(),
            };
            if let Err(e) = env.add_template_owned(name, source) {
                problems.push(format!("template {name}: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(Self { env })
        } else {
            Err(problems)
        }
    }

    /// Renders template `name` with `context`.
    pub(crate) fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, minijinja::Error> {
        self.env
            .get_template(name)?
            .render(minijinja::value::Serde(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_compile_and_escape_html() {
        let t = Templates::load(None, |_| unreachable!("no directory")).expect("built-ins compile");
        let html = t
            .render("error.html", serde_json::json!({"product_name": "<b>x</b>", "title": "t", "message": "<script>"}))
            .expect("render");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>x</b>"));
    }

    #[test]
    fn an_override_replaces_a_template_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("error.html"), "custom {{ message }}").expect("write");
        let t = Templates::load(Some(dir.path()), |p| std::fs::read_to_string(p)).expect("loads");
        assert_eq!(
            t.render("error.html", serde_json::json!({"message": "<x>"}))
                .expect("render"),
            "custom &lt;x&gt;"
        );

        std::fs::write(dir.path().join("login.html"), "{% if %}").expect("write");
        let problems = Templates::load(Some(dir.path()), |p| std::fs::read_to_string(p))
            .err()
            .expect("broken");
        assert!(problems[0].contains("login.html"), "{problems:?}");
    }
}
