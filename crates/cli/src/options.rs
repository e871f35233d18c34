//! The one place where parsed arguments ([`super::args`]) become the library's option types:
//! [`TrainSettings`], [`DecodeOptions`], [`FolderOptions`], [`EvalOptions`],
//! [`CalibrateOptions`], [`ImportOptions`], [`ExtractOptions`], and what `batch` exports.
//! Checks of values clap cannot make (ranges, combinations) are made here too.

use std::path::PathBuf;

use super::args::{
    BatchArgs, CalibrateArgs, DecodeArgs, EvalArgs, FeaturesArgs, GroundingArg, SplitArg, TextArgs,
    TrainArgs, WatchArgs,
};
use captioner::dataset::{ImportOptions, Split};
use captioner::decoder::SearchOptions;
use captioner::export::{Existing, ExportKind, MetadataTarget};
use captioner::features::ExtractOptions;
use captioner::jobs::calibrate::{CalibrateOptions, MIN_DEV_PHOTOS};
use captioner::jobs::caption::FolderOptions;
use captioner::jobs::evaluate::EvalOptions;
use captioner::jobs::train::TrainSettings;
use captioner::jobs::watch::WatchOptions;
use captioner::pipeline::{DecodeOptions, Grounding};
use captioner::train::TrainConfig;

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Dev => Split::Dev,
            SplitArg::Test => Split::Test,
        }
    }
}

impl TextArgs {
    /// How to read the dataset (images are checked).
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            cleaning: self.cleaning,
            min_count: self.min_count,
            fractions: self.split_fractions,
            check_images: true,
        }
    }
}

impl DecodeArgs {
    /// The decoding options, checked.
    pub fn options(&self) -> anyhow::Result<DecodeOptions> {
        if self.max_len == 0 {
            anyhow::bail!("--max-len must be at least 1");
        }
        if self.beam == 0 {
            anyhow::bail!("--beam must be at least 1");
        }
        if !self.length_alpha.is_finite() || !(0.0..=4.0).contains(&self.length_alpha) {
            anyhow::bail!("--length-alpha must be between 0 and 4");
        }
        Ok(DecodeOptions {
            beam: self.beam,
            max_len: self.max_len,
            search: SearchOptions {
                block_ngram: self.block_ngram,
                length_alpha: self.length_alpha,
            },
            grounding: match self.grounding {
                GroundingArg::On => Grounding::On,
                GroundingArg::Off => Grounding::Off,
            },
            start_with: String::new(),
        })
    }
}

impl FeaturesArgs {
    /// How to extract the features.
    pub fn extract_options(&self) -> ExtractOptions {
        ExtractOptions {
            batch_size: self.batch.max(1),
            spatial: self.spatial,
            ..ExtractOptions::default()
        }
    }
}

impl TrainArgs {
    /// The training settings: the decoder's defaults ([`TrainSettings::for_decoder`]) where
    /// `--hidden`, `--lr`, `--epochs` and `--patience` are not given (with `--from`, the
    /// fine-tuning ones, [`captioner::jobs::train::FINE_TUNE_LR`] and its neighbours);
    /// `--from default` is the shipped model unless a folder of that name exists.
    pub fn settings(&self) -> anyhow::Result<TrainSettings> {
        if self.resume && self.out.is_none() {
            anyhow::bail!("--resume needs --out DIR: the folder of the run to continue");
        }
        let defaults = TrainSettings::for_decoder(self.decoder.into());
        Ok(TrainSettings {
            dataset_dir: Some(self.dir.clone()),
            import: self.text.import_options(),
            decoder: defaults.decoder,
            embed_dim: self.embed,
            hidden_dim: self.hidden.unwrap_or(defaults.hidden_dim),
            attention_dim: self.attention_dim,
            dropout: self.dropout,
            train: TrainConfig {
                epochs: self.epochs.unwrap_or(if self.from.is_some() {
                    captioner::jobs::train::FINE_TUNE_EPOCHS
                } else {
                    defaults.train.epochs
                }),
                batch_size: self.batch,
                // Fine-tuning starts from a trained model: its own, lower default rate.
                lr: self.lr.unwrap_or(if self.from.is_some() {
                    captioner::jobs::train::FINE_TUNE_LR
                } else {
                    defaults.train.lr
                }),
                early_stop_patience: self.patience.unwrap_or(if self.from.is_some() {
                    captioner::jobs::train::FINE_TUNE_PATIENCE
                } else {
                    defaults.train.early_stop_patience
                }),
                dev_bleu_images: self.dev_bleu_images,
                seed: self.seed,
                engine: self.engine,
                ..defaults.train
            },
            out_dir: self.out.clone(),
            from: self.from.as_ref().map(|f| {
                if f.as_os_str() == "default" && !f.exists() {
                    captioner::paths::default_model_dir()
                } else {
                    f.clone()
                }
            }),
        })
    }
}

impl EvalArgs {
    /// What to score.
    pub fn options(&self) -> anyhow::Result<EvalOptions> {
        Ok(EvalOptions {
            split: self.split.into(),
            import: self.text.import_options(),
            decode: self.decode.options()?,
        })
    }
}

impl CalibrateArgs {
    /// What to fit and measure.
    pub fn options(&self) -> anyhow::Result<CalibrateOptions> {
        Ok(CalibrateOptions {
            import: self.text.import_options(),
            decode: self.decode.options()?,
            unfamiliar: self.unfamiliar.clone(),
            write: !self.dry_run,
            min_dev_photos: MIN_DEV_PHOTOS,
            signals_csv: self.signals.clone(),
        })
    }
}

impl BatchArgs {
    /// How to caption the folder.
    pub fn folder_options(&self) -> anyhow::Result<FolderOptions> {
        Ok(FolderOptions {
            decode: self.decode.options()?.start_with(self.start_with.trim()),
            ..FolderOptions::default()
        })
    }

    /// `--existing`, or `--overwrite`, or skip.
    pub fn existing(&self) -> Existing {
        match (self.existing, self.overwrite) {
            (Some(e), _) => e,
            (None, true) => Existing::Overwrite,
            (None, false) => Existing::Skip,
        }
    }

    /// The photo metadata to write (`--xmp-sidecars`, `--embed`), each with its name for the
    /// report.
    pub fn metadata_targets(&self) -> Vec<(MetadataTarget, &'static str)> {
        [
            (
                self.xmp_sidecars,
                MetadataTarget::XmpSidecar,
                "XMP sidecars",
            ),
            (
                self.embed,
                MetadataTarget::Embedded,
                "embedded descriptions",
            ),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, target, what)| (target, what))
        .collect()
    }

    /// The files to write, in the order they are written.
    pub fn export_files(&self) -> Vec<(ExportKind, PathBuf)> {
        [
            (ExportKind::AltHtml, &self.alt_html),
            (ExportKind::AltCsv, &self.alt_csv),
            (ExportKind::AltJson, &self.alt_json),
            (ExportKind::Csv, &self.csv),
            (ExportKind::Json, &self.json),
        ]
        .into_iter()
        .filter_map(|(kind, file)| file.clone().map(|f| (kind, f)))
        .collect()
    }
}

impl WatchArgs {
    /// How to caption and write the photos that appear.
    pub fn watch_options(&self) -> anyhow::Result<WatchOptions> {
        let mut metadata = Vec::new();
        if self.xmp_sidecars {
            metadata.push(MetadataTarget::XmpSidecar);
        }
        if self.embed {
            metadata.push(MetadataTarget::Embedded);
        }
        Ok(WatchOptions {
            folder: FolderOptions {
                decode: self.decode.options()?.start_with(self.start_with.trim()),
                ..FolderOptions::default()
            },
            sidecars: self.sidecars,
            metadata,
            existing: self.existing,
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            ..WatchOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::args::{Cli, Command};
    use super::*;
    use captioner::decoder::DecoderKind;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("captioner").chain(args.iter().copied()))
            .map(|c| c.command)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn train_takes_the_decoders_defaults_unless_given() {
        let Command::Train(args) = parse(&["train", "data"]) else {
            panic!("not train")
        };
        assert_eq!(
            args.settings().unwrap(),
            TrainSettings {
                dataset_dir: Some("data".into()),
                ..TrainSettings::default()
            }
        );
        let Command::Train(args) = parse(&["train", "data", "--decoder", "attention"]) else {
            panic!("not train")
        };
        let s = args.settings().unwrap();
        let attention = TrainSettings::for_decoder(DecoderKind::Attention);
        assert_eq!(s.decoder, DecoderKind::Attention);
        assert_eq!(
            (s.hidden_dim, s.train.lr),
            (attention.hidden_dim, attention.train.lr)
        );
        let Command::Train(args) = parse(&[
            "train",
            "data",
            "--decoder",
            "attention",
            "--hidden",
            "64",
            "--lr",
            "0.01",
        ]) else {
            panic!("not train")
        };
        let s = args.settings().unwrap();
        assert_eq!((s.hidden_dim, s.train.lr), (64, 0.01));
        // Fine-tuning: the fine-tuning rate unless --lr is given.
        let Command::Train(args) = parse(&["train", "data", "--from", "some-model"]) else {
            panic!("not train")
        };
        let fine = args.settings().unwrap().train;
        assert_eq!(fine.lr, captioner::jobs::train::FINE_TUNE_LR);
        // ... and the fine-tuning epochs and patience (the README's recipe).
        assert_eq!((fine.epochs, fine.early_stop_patience), (3, 0));
        let Command::Train(args) = parse(&[
            "train",
            "data",
            "--from",
            "m",
            "--lr",
            "0.0005",
            "--epochs",
            "9",
            "--patience",
            "4",
        ]) else {
            panic!("not train")
        };
        let given = args.settings().unwrap().train;
        assert_eq!(given.lr, 0.0005);
        assert_eq!((given.epochs, given.early_stop_patience), (9, 4));
        // A new model: 20 epochs, patience 5.
        let Command::Train(args) = parse(&["train", "data"]) else {
            panic!("not train")
        };
        let new = args.settings().unwrap().train;
        assert_eq!((new.epochs, new.early_stop_patience), (20, 5));
        let Command::Train(args) = parse(&["train", "data", "--resume"]) else {
            panic!("not train")
        };
        assert!(args.settings().unwrap_err().to_string().contains("--out"));
    }

    #[test]
    fn decoder_and_split_accept_their_names_only() {
        for (name, kind) in [
            ("merge", DecoderKind::Merge),
            ("inject", DecoderKind::Inject),
            ("attention", DecoderKind::Attention),
        ] {
            let Command::Train(args) = parse(&["train", "d", "--decoder", name]) else {
                panic!("not train")
            };
            assert_eq!(DecoderKind::from(args.decoder), kind);
        }
        for (name, split) in [
            ("train", Split::Train),
            ("dev", Split::Dev),
            ("test", Split::Test),
        ] {
            let Command::Eval(args) = parse(&["eval", "d", "--split", name]) else {
                panic!("not eval")
            };
            assert_eq!(args.options().unwrap().split, split);
        }
        let Command::Eval(args) = parse(&["eval", "d"]) else {
            panic!("not eval")
        };
        assert_eq!(args.options().unwrap().split, Split::Dev);
        for bad in [
            &["train", "d", "--decoder", "transformer"][..],
            &["eval", "d", "--split", "validation"][..],
        ] {
            let e = Cli::try_parse_from(std::iter::once("captioner").chain(bad.iter().copied()))
                .unwrap_err()
                .to_string();
            assert!(e.contains("possible values"), "{e}");
        }
    }

    #[test]
    fn decode_options_are_checked() {
        let Command::Caption(args) = parse(&["caption", "x.jpg"]) else {
            panic!("not caption")
        };
        assert_eq!(args.decode.options().unwrap(), DecodeOptions::default());
        for bad in [
            &["caption", "x.jpg", "--beam", "0"][..],
            &["caption", "x.jpg", "--max-len", "0"][..],
            &["caption", "x.jpg", "--length-alpha", "5"][..],
        ] {
            let Command::Caption(args) = parse(bad) else {
                panic!("not caption")
            };
            assert!(args.decode.options().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn batch_exports_what_its_flags_ask() {
        let Command::Batch(args) = parse(&[
            "batch",
            "photos",
            "--json",
            "a.json",
            "--csv",
            "a.csv",
            "--embed",
            "--overwrite",
        ]) else {
            panic!("not batch")
        };
        assert_eq!(args.existing(), Existing::Overwrite);
        assert_eq!(
            args.export_files(),
            vec![
                (ExportKind::Csv, PathBuf::from("a.csv")),
                (ExportKind::Json, PathBuf::from("a.json"))
            ]
        );
        assert_eq!(
            args.metadata_targets(),
            vec![(MetadataTarget::Embedded, "embedded descriptions")]
        );
        let options = args.folder_options().unwrap();
        assert_eq!(options.decode, DecodeOptions::default());
        assert_eq!(options.batch, FolderOptions::default().batch);
    }

    #[test]
    fn bench_needs_its_folders() {
        for args in [&["bench", "train"][..], &["bench", "encoder"][..]] {
            let e = Cli::try_parse_from(std::iter::once("captioner").chain(args.iter().copied()))
                .unwrap_err()
                .to_string();
            assert!(e.contains("required"), "{args:?}: {e}");
        }
    }
}
