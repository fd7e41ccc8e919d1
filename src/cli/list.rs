//! `carbon-store list`: images and components with their descriptions.

use super::Cli;
use super::error::CliError;

pub fn run(cli: &Cli) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    println!("images:");
    for (name, (_, image)) in &recipes.images {
        println!("  {name:<20} {}", image.image.description);
    }
    println!("components:");
    for (name, (_, component)) in &recipes.components {
        println!("  {name:<20} {}", component.component.description);
    }
    Ok(())
}
