//! An inventory as an SPDX 2.3 JSON document: the image as the described package, each
//! package it contains with its purl, file checksum, source package and declared license,
//! and the dependencies the Debian control data name.

use super::Inventory;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The media type of the document (as an OCI artifact type too).
pub const MEDIA_TYPE: &str = "application/spdx+json";

const IMAGE_ID: &str = "SPDXRef-image";

fn checksum(digest: &crate::digest::Digest) -> Value {
    let algorithm = match digest.algorithm() {
        "sha512" => "SHA512",
        _ => "SHA256",
    };
    json!({ "algorithm": algorithm, "checksumValue": digest.hex() })
}

fn purl_ref(purl: &str) -> Value {
    json!([{
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    }])
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

/// The document, as canonical JSON bytes.
pub fn document(inventory: &Inventory) -> Vec<u8> {
    let s = &inventory.subject;
    let manifest = crate::digest::Digest::parse_oci(&s.manifest_digest).expect("a manifest digest");
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": s.image,
        "versionInfo": s.manifest_digest,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": [checksum(&manifest)],
        "externalRefs": purl_ref(&inventory.subject_purl()),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("The {} image for linux/{}, by its manifest digest.", s.image, s.arch),
    })];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    let mut extracted: BTreeMap<String, String> = BTreeMap::new();
    for (i, p) in inventory.packages.iter().enumerate() {
        let id = inventory.id(i);
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "packageFileName": p.file,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": [checksum(&p.digest)],
            "externalRefs": purl_ref(&p.purl),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": p.license.as_deref().unwrap_or("NOASSERTION"),
            "copyrightText": "NOASSERTION",
            "comment": match &p.at {
                Some(at) => format!("component {}; installed at {at}", p.component),
                None => format!("component {}", p.component),
            },
        });
        if let Some((source, version)) = &p.source {
            package["sourceInfo"] = json!(format!(
                "built from the Debian source package {source} {version}"
            ));
        }
        packages.push(package);
        for (ref_id, name) in &p.license_refs {
            extracted
                .entry(ref_id.clone())
                .or_insert_with(|| name.clone());
        }
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
        for &d in &p.depends {
            relationships.push(relationship(&id, "DEPENDS_ON", &inventory.id(d)));
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} linux/{}", s.image, s.arch),
        "documentNamespace": format!("urn:uuid:{}", inventory.uuid("spdx")),
        "creationInfo": {
            "created": crate::oci::rfc3339(s.source_date_epoch),
            "creators": [format!("Tool: carbon-store-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = extracted
            .into_iter()
            .map(|(id, name)| {
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": format!(
                        "The license Debian's copyright file of the package names \"{name}\"; \
                         its text is in the image under /usr/share/doc/<package>/copyright."
                    ),
                })
            })
            .collect();
    }
    crate::oci::canonical_json(&doc)
}
