//! The exact setup steps of a profile's devices (issue 17): the router's DNS address, and
//! for every ClientID device the iOS/macOS `.mobileconfig` (DNS over HTTPS, with a QR code
//! of its download link), the Android Private DNS host name (with its QR code) and the
//! Windows DoH template with its PowerShell line. Steps a server cannot serve (no DoH or
//! DoT name) say why instead.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use maud::{Markup, html};
use plist::{Dictionary, Value};
use sha2::{Digest, Sha256};

use crate::console::i18n::Lang;
use crate::console::{Console, DohEndpoint};
use crate::profiles::{Identity, IdentityKind, Profile};

/// The `Content-Type` of a configuration profile.
pub const MOBILECONFIG_TYPE: &str = "application/x-apple-aspen-config";

/// Pixels per QR module: a 37-module code is 270 px with its quiet zone, enough for a
/// phone's camera at arm's length.
const QR_MODULE_PX: u32 = 6;

/// What a device's `.mobileconfig` is made for.
pub struct DeviceProfile<'a> {
    /// The profile's name as shown to the person installing it.
    pub profile_name: &'a str,
    /// The device's ClientID (lowercase, `[a-z0-9-]`, as the store normalized it).
    pub client_id: &'a str,
    /// The payload's description, in the page's language.
    pub description: &'a str,
}

/// The console's path of a device's `.mobileconfig`.
pub fn mobileconfig_path(profile_id: &str, identity_id: i64) -> String {
    format!("/profiles/{profile_id}/devices/{identity_id}/mobileconfig")
}

/// The attachment's file name: `{client_id}.mobileconfig`.
pub fn mobileconfig_file(client_id: &str) -> String {
    format!("{client_id}.mobileconfig")
}

/// `dns.example.vn` → `vn.example.dns`: Apple's payload identifiers are reverse-DNS.
fn reverse_dns(name: &str) -> String {
    name.split('.').rev().collect::<Vec<_>>().join(".")
}

/// A UUID derived from the server name, the ClientID and `role`: a second download of the
/// same device's profile carries the same UUIDs, so the device replaces it rather than
/// installing a twin.
fn payload_uuid(doh: &DohEndpoint, client_id: &str, role: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"kidsafe-dns mobileconfig\0")
        .chain_update(doh.name.as_bytes())
        .chain_update(b"\0")
        .chain_update(client_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(role.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
        .to_ascii_uppercase()
}

/// The configuration profile (XML plist) that sends a device's DNS to `doh` over HTTPS
/// with its ClientID in the path: one `com.apple.dnsSettings.managed` payload.
///
/// # Errors
/// The plist cannot be written (it is written to memory: not expected).
pub fn mobileconfig(
    device: &DeviceProfile<'_>,
    doh: &DohEndpoint,
) -> Result<Vec<u8>, plist::Error> {
    let identifier = format!(
        "{}.kidsafe-dns.{}",
        reverse_dns(&doh.name),
        device.client_id
    );
    let display = format!("{} (kidsafe-dns)", device.profile_name);

    let mut dns = Dictionary::new();
    dns.insert("DNSProtocol".into(), Value::from("HTTPS"));
    dns.insert("ServerURL".into(), Value::from(doh.url(device.client_id)));
    let addrs = doh.public_addrs();
    if !addrs.is_empty() {
        // Lets the device reach the server without first resolving its name elsewhere.
        dns.insert(
            "ServerAddresses".into(),
            Value::Array(addrs.iter().map(|a| Value::from(a.to_string())).collect()),
        );
    }
    let mut payload = Dictionary::new();
    payload.insert("DNSSettings".into(), Value::Dictionary(dns));
    payload.insert("PayloadDisplayName".into(), Value::from(display.clone()));
    payload.insert(
        "PayloadIdentifier".into(),
        Value::from(format!("{identifier}.dns")),
    );
    payload.insert(
        "PayloadType".into(),
        Value::from("com.apple.dnsSettings.managed"),
    );
    payload.insert(
        "PayloadUUID".into(),
        Value::from(payload_uuid(doh, device.client_id, "dns")),
    );
    payload.insert("PayloadVersion".into(), Value::from(1u64));

    let mut top = Dictionary::new();
    top.insert(
        "PayloadContent".into(),
        Value::Array(vec![Value::Dictionary(payload)]),
    );
    top.insert("PayloadDescription".into(), Value::from(device.description));
    top.insert("PayloadDisplayName".into(), Value::from(display));
    top.insert("PayloadIdentifier".into(), Value::from(identifier));
    top.insert("PayloadRemovalDisallowed".into(), Value::from(false));
    top.insert("PayloadType".into(), Value::from("Configuration"));
    top.insert(
        "PayloadUUID".into(),
        Value::from(payload_uuid(doh, device.client_id, "configuration")),
    );
    top.insert("PayloadVersion".into(), Value::from(1u64));

    let mut out = Vec::new();
    Value::Dictionary(top).to_writer_xml(&mut out)?;
    Ok(out)
}

/// `text` as a QR code in a PNG `data:` URI (medium error correction); `None` when it is
/// too long for a QR code.
pub fn qr_data_uri(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let image = code
        .render::<image::Luma<u8>>()
        .module_dimensions(QR_MODULE_PX, QR_MODULE_PX)
        .build();
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        data_encoding::BASE64.encode(&png)
    ))
}

/// `http(s)://host` as the browser reached the console (its `Host` header), for links a
/// phone opens from a QR code; `None` without a plausible host.
pub fn base_url(secure: bool, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plausible.then(|| format!("{}://{host}", if secure { "https" } else { "http" }))
}

/// The Windows PowerShell line that makes `template` the DoH template of `server`.
pub fn powershell_line(server: &str, template: &str) -> String {
    format!(
        "Add-DnsClientDohServerAddress -ServerAddress {server} -DohTemplate {template} -AllowFallbackToUdp $False -AutoUpgrade $True"
    )
}

/// The addresses a Windows PC is told to use: DoH's own, else the plain DNS ones (never
/// unspecified or loopback); `<IP>` when none is known.
fn windows_servers(c: &Console, doh: &DohEndpoint) -> Vec<String> {
    let mut ips: Vec<IpAddr> = doh.public_addrs();
    if ips.is_empty() {
        ips = c
            .dns_addrs
            .iter()
            .map(|a| a.ip())
            .filter(|a| !a.is_unspecified() && !a.is_loopback())
            .collect();
        ips.dedup();
    }
    if ips.is_empty() {
        vec!["<IP>".to_owned()]
    } else {
        ips.iter().map(IpAddr::to_string).collect()
    }
}

/// The setup steps under a profile's devices. `base` is the console's own URL (for the
/// iPhone QR code), when the request named a host.
pub fn steps(c: &Console, l: Lang, p: &Profile, ids: &[Identity], base: Option<&str>) -> Markup {
    let routers: Vec<String> = c
        .dns_addrs
        .iter()
        .map(|a| {
            if a.port() == 53 {
                a.ip().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let client_ids: Vec<&Identity> = ids
        .iter()
        .filter(|i| i.kind == IdentityKind::ClientId)
        .collect();
    html! {
        details.setup open[!client_ids.is_empty()] {
            summary { (l.t("setup_steps")) }
            ol {
                li { (l.t("step_router")) " " @for (i, r) in routers.iter().enumerate() { @if i > 0 { ", " } code { (r) } } }
                @if client_ids.is_empty() {
                    li {
                        @match &c.dot_name {
                            Some(name) => { (l.t("step_android")) " " code { (name) } }
                            None => { (l.t("step_android_none")) }
                        }
                    }
                    li { (l.t("step_clientid_hint")) }
                }
            }
            @for i in &client_ids {
                (device_steps(c, l, p, i, base))
            }
        }
    }
}

/// iPhone/Mac, Android and Windows steps for one ClientID device.
fn device_steps(c: &Console, l: Lang, p: &Profile, i: &Identity, base: Option<&str>) -> Markup {
    let path = mobileconfig_path(&p.id, i.id);
    let ios_qr = base.and_then(|b| {
        let url = format!("{b}{path}");
        qr_data_uri(&url).map(|qr| (url, qr))
    });
    let android = c
        .dot_name
        .as_ref()
        .map(|name| format!("{}.{name}", i.value));
    let android_qr = android.as_deref().and_then(qr_data_uri);
    html! {
        section.device-setup aria-labelledby={ "setup-" (i.id) } {
            h3 id={ "setup-" (i.id) } { (l.t("device_setup")) " " code { (i.value) } }
            h4 { "iPhone, iPad, Mac" }
            @match &c.doh {
                Some(_) => {
                    p { (l.t("step_ios")) }
                    p { a.button href=(path) download=(mobileconfig_file(&i.value)) { (l.t("download_mobileconfig")) } }
                    @if let Some((url, qr)) = &ios_qr {
                        figure.qr {
                            img id={ "qr-ios-" (i.id) } src=(qr) alt={ (l.t("qr_of")) " " (url) };
                            figcaption { (l.t("step_ios_scan")) }
                        }
                    }
                }
                None => { p.help { (l.t("step_doh_none")) } }
            }
            h4 { "Android" }
            @match (&android, &android_qr) {
                (Some(host), qr) => {
                    p { (l.t("step_android")) " " code { (host) } }
                    @if let Some(qr) = qr {
                        figure.qr {
                            img id={ "qr-android-" (i.id) } src=(qr) alt={ (l.t("qr_of")) " " (host) };
                            figcaption { (l.t("step_android_scan")) }
                        }
                    }
                }
                (None, _) => { p.help { (l.t("step_android_none")) } }
            }
            h4 { "Windows 11" }
            @match &c.doh {
                Some(doh) => {
                    @let template = doh.url(&i.value);
                    p { (l.t("step_windows")) }
                    pre { code.template { (template) } }
                    p { (l.t("step_windows_ps")) }
                    pre { code.powershell { @for (n, ip) in windows_servers(c, doh).iter().enumerate() { @if n > 0 { "\n" } (powershell_line(ip, &template)) } } }
                }
                None => { p.help { (l.t("step_doh_none")) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doh(port: u16, addrs: &[&str]) -> DohEndpoint {
        DohEndpoint {
            name: "dns.example.vn".into(),
            port,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn device() -> DeviceProfile<'static> {
        DeviceProfile {
            profile_name: "Bé An <3",
            client_id: "be-an-phone",
            description: "test",
        }
    }

    #[test]
    fn the_profile_names_the_doh_url_with_the_client_id() {
        let d = doh(443, &["0.0.0.0", "127.0.0.1", "203.0.113.5"]);
        let bytes = mobileconfig(&device(), &d).unwrap();
        let top = Value::from_reader_xml(&bytes[..]).unwrap();
        let top = top.as_dictionary().unwrap();
        assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
        assert_eq!(
            top["PayloadIdentifier"].as_string(),
            Some("vn.example.dns.kidsafe-dns.be-an-phone")
        );
        assert_eq!(
            top["PayloadDisplayName"].as_string(),
            Some("Bé An <3 (kidsafe-dns)")
        );
        let payload = top["PayloadContent"].as_array().unwrap()[0]
            .as_dictionary()
            .unwrap();
        assert_eq!(
            payload["PayloadType"].as_string(),
            Some("com.apple.dnsSettings.managed")
        );
        let dns = payload["DNSSettings"].as_dictionary().unwrap();
        assert_eq!(dns["DNSProtocol"].as_string(), Some("HTTPS"));
        assert_eq!(
            dns["ServerURL"].as_string(),
            Some("https://dns.example.vn/dns-query/be-an-phone")
        );
        // Only the address a phone can reach.
        let addrs: Vec<_> = dns["ServerAddresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap())
            .collect();
        assert_eq!(addrs, ["203.0.113.5"]);
        // Two different UUIDs, the same on the next download.
        let (a, b) = (
            top["PayloadUUID"].as_string().unwrap(),
            payload["PayloadUUID"].as_string().unwrap(),
        );
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(a).is_ok() && uuid::Uuid::parse_str(b).is_ok());
        assert_eq!(bytes, mobileconfig(&device(), &d).unwrap());
    }

    #[test]
    fn a_port_other_than_443_is_named_and_loopback_is_no_server_address() {
        let d = doh(8443, &["127.0.0.1"]);
        assert_eq!(
            d.url("kid"),
            "https://dns.example.vn:8443/dns-query/kid".to_owned()
        );
        let top = Value::from_reader_xml(&mobileconfig(&device(), &d).unwrap()[..]).unwrap();
        let dns = top.as_dictionary().unwrap()["PayloadContent"]
            .as_array()
            .unwrap()[0]
            .as_dictionary()
            .unwrap()["DNSSettings"]
            .as_dictionary()
            .unwrap();
        assert!(!dns.contains_key("ServerAddresses"));
    }

    #[test]
    fn qr_codes_are_png_data_uris_and_hosts_are_checked() {
        let qr = qr_data_uri("be-an-phone.dns.example.vn").unwrap();
        let png = data_encoding::BASE64
            .decode(
                qr.strip_prefix("data:image/png;base64,")
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        // Longer than any QR code holds.
        assert_eq!(qr_data_uri(&"x".repeat(8000)), None);

        let mut h = HeaderMap::new();
        assert_eq!(base_url(false, &h), None);
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            base_url(true, &h).as_deref(),
            Some("https://127.0.0.1:8080")
        );
        h.insert(header::HOST, "evil\"><script>".parse().unwrap());
        assert_eq!(base_url(false, &h), None);
    }

    #[test]
    fn the_powershell_line_is_exact() {
        assert_eq!(
            powershell_line("203.0.113.5", "https://dns.example.vn/dns-query/kid"),
            "Add-DnsClientDohServerAddress -ServerAddress 203.0.113.5 -DohTemplate https://dns.example.vn/dns-query/kid -AllowFallbackToUdp $False -AutoUpgrade $True"
        );
    }
}
