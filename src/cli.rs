//! The command line: `captioner <subcommand>`; the same library jobs the desktop app runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::dataset::{self, Cleaning, ImportOptions, SplitFractions, Summary};

/// Writes captions for photos and trains its own captioning model, on your machine.
///
/// Run without arguments to open the desktop app.
#[derive(Parser, Debug)]
#[command(name = "captioner", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with captioned photo datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Read a dataset folder, check it, and summarise it.
    ///
    /// Recognises Flickr8k as distributed, the Kaggle layout (Images/ + captions.txt),
    /// COCO captions (captions_*.json) and image folders with .txt sidecars. Nothing is written
    /// inside the folder.
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// Text-preparation options shared by the commands that read a dataset.
#[derive(Args, Debug, Clone)]
pub struct TextArgs {
    /// Caption cleaning: `natural` keeps one-letter words such as "a"; `tutorial` drops them as
    /// the original tutorial did.
    #[arg(long, default_value = "natural")]
    pub cleaning: Cleaning,
    /// Words seen fewer times than this in the training captions become <unk>.
    #[arg(long, default_value_t = 5)]
    pub min_count: usize,
    /// Train/dev/test fractions for datasets without split files.
    #[arg(long, default_value = "80/10/10", value_parser = SplitFractions::parse)]
    pub split_fractions: SplitFractions,
}

impl TextArgs {
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            cleaning: self.cleaning,
            min_count: self.min_count,
            fractions: self.split_fractions,
            check_images: true,
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dataset(DatasetCommand::Inspect(args)) => inspect(&args),
    }
}

fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let ds = dataset::import(&args.dir, &args.text.import_options())?;
    let summary = ds.summary();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", format_summary(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable `dataset inspect` report.
pub fn format_summary(s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Dataset      {}", s.root.display());
    let _ = writeln!(out, "Layout       {}", s.layout);
    let _ = writeln!(
        out,
        "Images       {} captioned images in {}",
        s.images,
        s.images_dir.display()
    );
    let _ = writeln!(out, "Captions     {}", s.captions);
    let _ = writeln!(
        out,
        "Missing      {} images referenced by captions but not on disk",
        s.missing_images
    );
    if s.unreadable_images > 0 {
        let _ = writeln!(
            out,
            "Unreadable   {} image files that cannot be read",
            s.unreadable_images
        );
    }
    let _ = writeln!(
        out,
        "Uncaptioned  {} images without captions",
        s.uncaptioned_images
    );
    let _ = writeln!(
        out,
        "Splits       train {}, dev {}, test {}{} (from {})",
        s.splits.train,
        s.splits.dev,
        s.splits.test,
        if s.splits.unassigned > 0 {
            format!(", in no split {}", s.splits.unassigned)
        } else {
            String::new()
        },
        match s.splits.source {
            dataset::SplitSource::Files => "the split files",
            dataset::SplitSource::Hash => "a hash of each image name",
        }
    );
    let _ = writeln!(
        out,
        "Vocabulary   {} entries (words seen at least {} times in training captions, {} cleaning, 4 special tokens included)",
        s.vocab_size, s.min_count, s.cleaning
    );
    let l = &s.caption_length;
    let _ = writeln!(
        out,
        "Length       max {} words, mean {:.2}, 95th percentile {}",
        l.max, l.mean, l.p95
    );
    if s.problems.is_empty() {
        let _ = writeln!(out, "Problems     none");
    } else {
        let _ = writeln!(out, "Problems     {}", s.problems.len());
        for p in &s.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}
