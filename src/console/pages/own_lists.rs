//! A profile's own lists on its page: names a school or a family always allows (a class
//! site the shared list blocks by mistake) and names it always blocks (a game the class
//! is not to play), with add and remove forms. The profile store checks each name (one
//! rule per line, as a list file's) and refuses a bad one without changing anything.

use maud::{Markup, html};

use super::csrf_field;
use crate::console::accounts::Session;
use crate::console::i18n::Lang;
use crate::profiles::{Profile, ProfileSpec};

/// Which of the two lists a form names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `allow`: never blocked for this profile.
    Allow,
    /// `deny`: always blocked for this profile.
    Deny,
}

impl Which {
    /// The form's `list` field.
    pub fn parse(value: &str) -> Option<Which> {
        match value {
            "allow" => Some(Which::Allow),
            "deny" => Some(Which::Deny),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Which::Allow => "allow",
            Which::Deny => "deny",
        }
    }
}

/// A name as a person types it (`Example.COM.`, with spaces) in the form the lists
/// compare: trimmed, lower case, no final dot.
pub fn normalize(typed: &str) -> String {
    typed.trim().trim_end_matches('.').to_lowercase()
}

/// Adds `name` to list `which` of `spec` (once), or takes it off with `remove`.
pub fn apply(spec: &mut ProfileSpec, which: Which, name: String, remove: bool) {
    let list = match which {
        Which::Allow => &mut spec.allow,
        Which::Deny => &mut spec.deny,
    };
    if remove {
        list.retain(|n| *n != name);
    } else if !list.contains(&name) {
        list.push(name);
    }
}

/// The card: both lists, each with its names, a remove button per name and an add form.
pub fn card(s: &Session, l: Lang, p: &Profile) -> Markup {
    let lists = [
        (Which::Allow, &p.spec.allow, "own_allow", "own_allow_help"),
        (Which::Deny, &p.spec.deny, "own_deny", "own_deny_help"),
    ];
    html! {
        section.card aria-labelledby="own" {
            h2 #own { (l.t("own_lists")) }
            @for (which, names, title, help) in lists {
                @let key = which.as_str();
                h3 #{ "own-" (key) } { (l.t(title)) }
                p.help { (l.t(help)) }
                @if names.is_empty() { p { (l.t("own_empty")) } }
                ul.plain aria-labelledby={ "own-" (key) } {
                    @for n in names {
                        li {
                            code { (n) }
                            @if !p.read_only {
                                form method="post" action={ "/profiles/" (p.id) "/names" } {
                                    (csrf_field(s))
                                    input type="hidden" name="list" value=(key);
                                    input type="hidden" name="name" value=(n);
                                    input type="hidden" name="op" value="remove";
                                    button.danger type="submit" aria-label={ (l.t("remove")) " " (n) } { (l.t("remove")) }
                                }
                            }
                        }
                    }
                }
                @if !p.read_only {
                    form method="post" action={ "/profiles/" (p.id) "/names" } {
                        (csrf_field(s))
                        input type="hidden" name="list" value=(key);
                        div.row {
                            div {
                                label for={ "own-name-" (key) } { (l.t("domain_name")) }
                                input id={ "own-name-" (key) } type="text" name="name" required maxlength="253" autocomplete="off" inputmode="url";
                            }
                            button type="submit" { (l.t("add")) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_added_once_and_removed() {
        let mut spec = ProfileSpec::default();
        let name = normalize("  Lop5A.Example.VN. ");
        assert_eq!(name, "lop5a.example.vn");
        apply(&mut spec, Which::Allow, name.clone(), false);
        apply(&mut spec, Which::Allow, name.clone(), false);
        assert_eq!(spec.allow, vec![name.clone()]);
        assert!(spec.deny.is_empty());
        apply(&mut spec, Which::Allow, name, true);
        assert!(spec.allow.is_empty());
        assert_eq!(Which::parse("deny"), Some(Which::Deny));
        assert_eq!(Which::parse("block"), None);
    }
}
