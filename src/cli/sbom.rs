//! `carbon-store sbom IMAGE`: prints one of the documents realize attached to an image's
//! arch in its OCI layout: the SPDX or CycloneDX SBOM, or the SLSA provenance.

use super::Cli;
use super::error::CliError;
use carbon_store::oci::referrer;
use carbon_store::sbom;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct SbomArgs {
    /// The image, as realized into the output directory, or an OCI layout directory
    image: String,
    /// The arch (default: the only one, or this machine's)
    #[arg(long, value_parser = carbon_store::recipe::arch_named)]
    arch: Option<String>,
    /// spdx (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6 JSON) or provenance (SLSA v1)
    #[arg(long, default_value = "spdx")]
    format: Format,
    /// Where realize wrote the image's OCI layout
    #[arg(long, default_value = "oci-out")]
    out: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Spdx,
    Cyclonedx,
    Provenance,
}

impl Format {
    fn artifact_type(self) -> &'static str {
        match self {
            Format::Spdx => sbom::spdx::MEDIA_TYPE,
            Format::Cyclonedx => sbom::cyclonedx::MEDIA_TYPE,
            Format::Provenance => sbom::provenance::MEDIA_TYPE,
        }
    }
}

/// The arch to read: the one named, the only one, or this machine's.
pub fn choose_arch(
    layout: &Path,
    named: Option<&str>,
    archs: &std::collections::BTreeMap<String, String>,
) -> Result<String, CliError> {
    let list = || archs.keys().cloned().collect::<Vec<_>>().join(", ");
    let host = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let arch = match named {
        Some(a) => a,
        None if archs.len() == 1 => archs.keys().next().expect("one arch"),
        None => host,
    };
    if !archs.contains_key(arch) {
        return Err(CliError::new(format!(
            "{} has no image for {arch} (it has: {})",
            layout.display(),
            list()
        ))
        .hint("name one with --arch"));
    }
    Ok(arch.to_string())
}

/// The document of `artifact_type` attached to `arch`'s manifest in `layout`.
pub fn attached(
    layout: &Path,
    arch: Option<&str>,
    artifact_type: &str,
) -> Result<(String, Vec<u8>), CliError> {
    let archs = referrer::arch_manifests(layout).map_err(|e| {
        CliError::new(e.to_string()).hint("realize the image first: carbon-store realize IMAGE")
    })?;
    let arch = choose_arch(layout, arch, &archs)?;
    let manifest = &archs[&arch];
    let found = referrer::in_layout(layout)
        .map_err(|e| CliError::new(e.to_string()))?
        .into_iter()
        .find(|r| r.subject == *manifest && r.artifact_type == artifact_type)
        .ok_or_else(|| {
            CliError::new(format!(
                "{} has no {artifact_type} document for {arch}",
                layout.display()
            ))
            .hint(
                "realize the image again with this carbon-store: it attaches SBOMs and provenance",
            )
        })?;
    let bytes =
        referrer::read_blob(layout, &found.document).map_err(|e| CliError::new(e.to_string()))?;
    Ok((arch, bytes))
}

pub fn run(_cli: &Cli, args: &SbomArgs) -> Result<(), CliError> {
    let given = Path::new(&args.image);
    let layout = if given.join("index.json").is_file() {
        given.to_path_buf()
    } else {
        carbon_store::name::image_name("image name", &args.image)
            .map_err(|e| CliError::new(e.to_string()).code(super::exit::USAGE))?;
        args.out.join(&args.image)
    };
    let (_, bytes) = attached(&layout, args.arch.as_deref(), args.format.artifact_type())?;
    let mut out = std::io::stdout();
    let _ = out.write_all(&bytes).and_then(|_| out.write_all(b"\n"));
    Ok(())
}
