//! `GET /v1/check?name=...`: "is this site safe for children?", answered from the list and
//! the policy that are serving right now, for every client group.

use serde::Serialize;

use crate::lists::normalize::normalize;
use crate::lists::rule::Scope;
use crate::lists::{Blocklist, Decision};
use crate::policy::Client;
use crate::policy::decide::{Outcome, Policy};

/// The answer to a check.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The name as asked.
    pub name: String,
    /// The name as matched (lowercase, A-labels, no trailing dot).
    pub normalized: String,
    /// Whether the shared list blocks the name in any category: the portal's answer.
    pub listed: bool,
    /// The categories it is listed in.
    pub categories: Vec<String>,
    /// The deciding rule of the shared list, if any.
    pub rule: Option<RuleInfo>,
    /// Serial of the list that judged it.
    pub list_serial: u64,
    /// What each client group gets now (schedules included).
    pub groups: Vec<GroupVerdict>,
    /// The profile (group) that decides for the client asked about (`client`,
    /// `client_id`, `mac`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// The profile a client gets, and the identity that chose it.
#[derive(Debug, Serialize)]
pub struct Profile {
    /// The group's name.
    pub group: String,
    /// `client_id`, `mac`, `address` or `default`.
    pub chosen_by: &'static str,
    /// The group's verdict on the name (as in `groups`).
    pub verdict: &'static str,
}

/// A matched rule.
#[derive(Debug, Serialize)]
pub struct RuleInfo {
    /// The listed name.
    pub name: String,
    /// `block` or `allow`.
    pub action: &'static str,
    /// `exact` or `subdomains`.
    pub scope: &'static str,
}

/// One group's verdict.
#[derive(Debug, Serialize)]
pub struct GroupVerdict {
    /// The group.
    pub group: String,
    /// `blocked`, `filtered` (the group's deny list), `safesearch` or `allowed`.
    pub verdict: &'static str,
    /// Categories behind a block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The SafeSearch host the name is rewritten to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safesearch: Option<&'static str>,
    /// The blocked service (catalog id) behind a block, e.g. `tiktok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The guard behind a block: `bypass canary|relay|resolver|vpn` (bypass protection) or
    /// `unsafe search` (`block_unsafe_search`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// The host a name or pasted URL asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host name, normalized (lowercase, A-labels, no trailing dot).
    pub name: String,
    /// True when the input was a URL (`https://www.example.com/page`, or `example.com/page`
    /// without a scheme) and `name` is its host.
    pub from_url: bool,
}

/// The host name `input` asks about: `input` itself, or the host of a URL, normalized as
/// the resolver matches names.
///
/// ```
/// use kidsafe_dns::admin::check::target;
/// let t = target("http://WWW.Example.com/x?y").unwrap();
/// assert_eq!((t.name.as_str(), t.from_url), ("www.example.com", true));
/// assert!(target("bad..name").is_err());
/// ```
///
/// # Errors
/// `input` is neither a valid host name nor a URL with one; the message says why.
pub fn target(input: &str) -> Result<Target, String> {
    let input = input.trim();
    if !input.contains("://") && !input.contains(['/', '?', '#']) {
        let name = normalize(input)
            .map_err(|reason| format!("not a valid host name ({reason})"))?
            .into_owned();
        return Ok(Target {
            name,
            from_url: false,
        });
    }
    let absolute = if input.contains("://") {
        input.to_owned()
    } else {
        format!("http://{input}")
    };
    let url = url::Url::parse(&absolute).map_err(|e| format!("not a valid URL ({e})"))?;
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host,
        Some(_) => return Err("a URL naming an IP address, not a host name".into()),
        None => return Err("a URL without a host name".into()),
    };
    let name = normalize(host)
        .map_err(|reason| format!("a URL whose host is not a valid host name ({reason})"))?
        .into_owned();
    Ok(Target {
        name,
        from_url: true,
    })
}

/// Checks `name` against `list` and every group of `policy`, and names the profile `who`
/// gets, if given.
///
/// # Errors
/// The name is not a valid host name; the reason says why.
pub fn check(
    name: &str,
    list: &Blocklist,
    policy: &Policy,
    who: Option<&Client>,
) -> Result<CheckReport, String> {
    let normalized = normalize(name.trim())
        .map_err(|reason| format!("not a valid host name ({reason})"))?
        .into_owned();
    let v = list.lookup(&normalized);
    let manifest = list.manifest();
    let names = |bits: u32| -> Vec<String> {
        manifest
            .category_names(bits)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let rule = v.rule.as_ref().map(|r| RuleInfo {
        name: r.name.clone(),
        action: if v.decision == Decision::Allowed {
            "allow"
        } else {
            "block"
        },
        scope: match r.scope {
            Scope::Exact => "exact",
            Scope::Subtree => "subdomains",
        },
    });
    let labels = || normalized.split('.').map(str::as_bytes);
    let groups: Vec<GroupVerdict> = policy
        .groups()
        .iter()
        .map(|group| {
            let mut service = None;
            let mut guard = None;
            let (verdict, categories, safesearch) = match policy.decide(group, list, labels) {
                Outcome::Blocked(v) => ("blocked", names(v.categories), None),
                Outcome::Filtered(_) => ("filtered", Vec::new(), None),
                Outcome::Service(b) => {
                    service = Some(b.id.to_string());
                    ("blocked", Vec::new(), None)
                }
                Outcome::Bypass(b) => {
                    guard = Some(format!("bypass {}", b.kind.as_str()));
                    ("blocked", Vec::new(), None)
                }
                Outcome::UnsafeSearch(_) => {
                    guard = Some("unsafe search".to_owned());
                    ("blocked", Vec::new(), None)
                }
                Outcome::SafeSearch(target) => ("safesearch", Vec::new(), Some(target)),
                Outcome::Forward => ("allowed", Vec::new(), None),
            };
            GroupVerdict {
                group: group.name.clone(),
                verdict,
                categories,
                safesearch,
                service,
                guard,
            }
        })
        .collect();
    let profile = who.and_then(|who| {
        let (index, by) = policy.choose(who);
        let verdict = groups.get(index)?.verdict;
        Some(Profile {
            group: policy.groups().get(index)?.name.clone(),
            chosen_by: by.as_str(),
            verdict,
        })
    });
    Ok(CheckReport {
        profile,
        name: name.to_owned(),
        listed: v.decision == Decision::Blocked,
        categories: names(v.categories),
        rule,
        list_serial: manifest.serial,
        normalized,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(input: &str) -> Result<(String, bool), String> {
        target(input).map(|t| (t.name, t.from_url))
    }

    #[test]
    fn names_and_urls_reduce_to_their_host() {
        assert_eq!(host("Pornhub.com."), Ok(("pornhub.com".into(), false)));
        assert_eq!(
            host("http://pornhub.com/x"),
            Ok(("pornhub.com".into(), true))
        );
        assert_eq!(
            host("https://user@www.xvideos.com:8443/watch?v=1#t"),
            Ok(("www.xvideos.com".into(), true))
        );
        assert_eq!(host("bet365.com/en"), Ok(("bet365.com".into(), true)));
        assert_eq!(
            host("https://bücher.example/"),
            Ok(("xn--bcher-kva.example".into(), true))
        );
    }

    #[test]
    fn invalid_input_says_why() {
        for bad in [
            "",
            "  ",
            "bad..name",
            "a b.com",
            "http://10.0.0.1/x",
            "file:///etc/x",
            "http://",
        ] {
            assert!(host(bad).is_err(), "{bad:?}");
        }
        assert!(host("bad..name").unwrap_err().contains("empty_label"));
    }
}
