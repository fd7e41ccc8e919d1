//! An inventory as a CycloneDX 1.6 JSON document: the image as the BOM's component (a
//! container), each package a component with purl, hash and declared license, and the
//! dependencies the Debian control data name.

use super::{Ecosystem, Inventory};
use serde_json::{Value, json};

/// The media type of the document (as an OCI artifact type too).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

const IMAGE_REF: &str = "image";

fn hash(digest: &crate::digest::Digest) -> Value {
    let alg = match digest.algorithm() {
        "sha512" => "SHA-512",
        _ => "SHA-256",
    };
    json!({ "alg": alg, "content": digest.hex() })
}

fn property(name: &str, value: &str) -> Value {
    json!({ "name": format!("carbon-store:{name}"), "value": value })
}

/// The document, as canonical JSON bytes.
pub fn document(inventory: &Inventory) -> Vec<u8> {
    let s = &inventory.subject;
    let manifest = crate::digest::Digest::parse_oci(&s.manifest_digest).expect("a manifest digest");
    let mut components = Vec::new();
    let mut dependencies = vec![json!({
        "ref": IMAGE_REF,
        "dependsOn": (0..inventory.packages.len()).map(|i| inventory.id(i)).collect::<Vec<_>>(),
    })];
    for (i, p) in inventory.packages.iter().enumerate() {
        let id = inventory.id(i);
        let (group, name) = match (p.ecosystem, p.name.split_once('/')) {
            (Ecosystem::Npm, Some((scope, name))) => (Some(scope), name),
            _ => (None, p.name.as_str()),
        };
        let mut properties = vec![
            property("component", &p.component),
            property("file", &p.file),
        ];
        if let Some((source, version)) = &p.source {
            properties.push(property("debian:source", &format!("{source} {version}")));
        }
        if let Some(at) = &p.at {
            properties.push(property("npm:at", at));
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": id,
            "name": name,
            "version": p.version,
            "purl": p.purl,
            "hashes": [hash(&p.digest)],
            "properties": properties,
        });
        if let Some(group) = group {
            component["group"] = json!(group);
        }
        if let Some(license) = &p.license {
            component["licenses"] = json!([{ "expression": license }]);
        }
        components.push(component);
        if !p.depends.is_empty() {
            dependencies.push(json!({
                "ref": id,
                "dependsOn": p.depends.iter().map(|&d| inventory.id(d)).collect::<Vec<_>>(),
            }));
        }
    }
    let created = crate::oci::rfc3339(s.source_date_epoch);
    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", inventory.uuid("cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": { "components": [{
                "type": "application",
                "name": "carbon-store",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "container",
                "bom-ref": IMAGE_REF,
                "name": s.image,
                "version": s.manifest_digest,
                "purl": inventory.subject_purl(),
                "hashes": [hash(&manifest)],
                "properties": [property("arch", &s.arch)],
            },
        },
        "components": components,
        "dependencies": dependencies,
    });
    crate::oci::canonical_json(&doc)
}
