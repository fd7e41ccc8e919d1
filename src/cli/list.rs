//! `carbon-store list`: images and components with their descriptions, as text or JSON.

use super::error::CliError;
use super::{Cli, JsonFlag};

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(serde::Serialize)]
struct Listing<'r> {
    images: Vec<Entry<'r>>,
    components: Vec<Entry<'r>>,
}

#[derive(serde::Serialize)]
struct Entry<'r> {
    name: &'r str,
    description: &'r str,
}

pub fn run(cli: &Cli, args: &ListArgs) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    let listing = Listing {
        images: recipes
            .images
            .iter()
            .map(|(name, (_, image))| Entry {
                name,
                description: &image.image.description,
            })
            .collect(),
        components: recipes
            .components
            .iter()
            .map(|(name, (_, component))| Entry {
                name,
                description: &component.component.description,
            })
            .collect(),
    };
    if args.json.json {
        return super::print_json(&listing);
    }
    for (heading, entries) in [
        ("images", &listing.images),
        ("components", &listing.components),
    ] {
        println!("{heading}:");
        for e in entries {
            println!("  {:<20} {}", e.name, e.description);
        }
    }
    Ok(())
}
