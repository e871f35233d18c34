//! `captioner dataset inspect`: what is in a dataset folder.

use std::process::ExitCode;

use super::args::InspectArgs;
use captioner::dataset::{self, Summary};

/// `captioner dataset inspect`: reads the folder and prints its summary.
pub fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
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
