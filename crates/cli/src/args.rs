//! Every argument of the command line, defined once: the subcommands and the option groups
//! they share. Nothing here runs anything; [`super::options`] turns these into the library's
//! option types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use captioner::dataset::{Cleaning, ImportOptions, SplitFractions};
use captioner::decoder::DecoderKind;
use captioner::jobs::TrainSettings;

/// Writes captions for photos and trains its own captioning model, on your machine.
///
/// Run without arguments to open the desktop app.
#[derive(Parser, Debug)]
#[command(name = "captioner", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with captioned photo datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Print the top ImageNet classes of images (a direct check of the image encoder).
    Classify(ClassifyArgs),
    /// Compute and cache the image features of a whole dataset.
    Features(FeaturesArgs),
    /// Train a caption model on a dataset.
    Train(TrainArgs),
    /// Caption photos (with the shipped model unless --model is given).
    Caption(CaptionArgs),
    /// Score a model on a dataset split: BLEU-1..4 and CIDEr-D.
    Eval(EvalArgs),
    /// Caption every photo in a folder (and its sub-folders); export sidecars, CSV or JSON.
    Batch(BatchArgs),
    /// Watch a folder (and its sub-folders): caption the photos that appear in it, as they
    /// arrive, and write their sidecars or metadata; Ctrl-C stops (docs/watch.md).
    Watch(WatchArgs),
    /// Merge the shards of `batch --shard K/N --out OUT` into one JSON or CSV file, after
    /// checking that every shard finished with the same photo list, model and options.
    Merge(MergeArgs),
    /// Fit a model's familiarity (train split) and calibrated confidence (dev split) and write
    /// them into the model folder.
    Calibrate(CalibrateArgs),
    /// Train a model folder's concept detector (the words a photo shows, from its image
    /// features) on a dataset's train split and measure it on dev.
    Concepts(ConceptsArgs),
    /// List the caption models: the shipped one and the trained ones, with their dev figures.
    Models(ModelsArgs),
    /// Open the desktop app (what `captioner` alone does), optionally with a photo or folder.
    App(AppArgs),
    /// Speed measurements (JSON), as reported in the README.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// A caption decoder (`--decoder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecoderArg {
    /// The tutorial's: the image joined with the LSTM's output.
    Merge,
    /// Show and Tell: the image is the LSTM's first input.
    Inject,
    /// Show, Attend and Tell: soft attention over the encoder's 7x7 feature map.
    Attention,
}

impl From<DecoderArg> for DecoderKind {
    fn from(d: DecoderArg) -> DecoderKind {
        match d {
            DecoderArg::Merge => DecoderKind::Merge,
            DecoderArg::Inject => DecoderKind::Inject,
            DecoderArg::Attention => DecoderKind::Attention,
        }
    }
}

impl From<DecoderKind> for DecoderArg {
    fn from(d: DecoderKind) -> DecoderArg {
        match d {
            DecoderKind::Merge => DecoderArg::Merge,
            DecoderKind::Inject => DecoderArg::Inject,
            DecoderKind::Attention => DecoderArg::Attention,
        }
    }
}

/// A dataset split (`--split`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training photos.
    Train,
    /// The development photos (early stopping, calibration, the README's figures).
    Dev,
    /// The test photos.
    Test,
}

/// `captioner models`.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print JSON (one array of models) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The folder of trained models (default: `models/` in the data folder, as the app uses).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
}

/// `captioner app`.
#[derive(Args, Debug)]
pub struct AppArgs {
    /// Photos to caption or a folder to import, as if dropped on the window.
    pub open: Vec<PathBuf>,
    /// The panel to show.
    #[arg(long, value_enum)]
    pub tab: Option<captioner_app::Tab>,
    /// Start the panel's job on what was opened: training (--tab train, on a dataset folder)
    /// or captioning every photo (--tab batch, on a photo folder).
    #[arg(long)]
    pub run: bool,
    /// Caption with this model folder (Caption and Batch panels).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// `captioner bench ...`: the measurements take their photos and datasets as arguments (no
/// default folder is built in).
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Encoder images/s at batch 1 and 32, decode included and excluded.
    Encoder {
        /// Folder of JPEGs (the first --n by name are used), e.g.
        /// `../shared/flickr8k/Flicker8k_Dataset`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// How many photos.
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// The batch sizes to measure.
        #[arg(long, num_args = 1.., default_values_t = [1usize, 32])]
        batches: Vec<usize>,
        /// Timed passes per batch size (the median is reported).
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// One decoder training epoch from cached features.
    Train {
        /// The dataset folder (its features must be cached), e.g. `../shared/flickr8k`.
        dir: PathBuf,
        /// Cache folder for image features.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Captions per batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Training engine: auto (the CPU engine here), cpu, or candle (measured beside the
        /// CPU engine).
        #[arg(long, default_value_t = captioner::train::Engine::Auto)]
        engine: captioner::train::Engine,
        /// The decoder, with the sizes and learning rate `captioner train` gives it (attention:
        /// LSTM 512, attention 256, Adam 4e-4, over the cached 7x7 feature maps: `captioner
        /// features --spatial` first).
        #[arg(long, value_enum, default_value_t = DecoderArg::Merge)]
        decoder: DecoderArg,
        /// Train only this many batches (a quick look; the epoch time is then extrapolated).
        #[arg(long)]
        max_batches: Option<usize>,
    },
    /// Captioning a whole folder (`captioner batch`'s pipeline): photos/s, beside the
    /// encoder's own images/s (read + decode + forward) on the first photos of the folder.
    Batch {
        /// The folder of photos (searched recursively).
        dir: PathBuf,
        /// Model folder (default: the shipped model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Beam width.
        #[arg(long, default_value_t = captioner::pipeline::DecodeOptions::default().beam)]
        beam: usize,
        /// Photos per encoder pass.
        #[arg(long, default_value_t = captioner::jobs::caption::FolderOptions::default().batch)]
        batch: usize,
        /// Caption only the first N photos.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Warm single-photo caption latency (decode + encoder + beam search).
    Caption {
        /// Photos, captioned in turn.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Model folder (default: the shipped model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Beam width.
        #[arg(long, default_value_t = captioner::pipeline::DecodeOptions::default().beam)]
        beam: usize,
        /// Timed captions (the median is reported).
        #[arg(long, default_value_t = 30)]
        n: usize,
    },
}

/// `captioner dataset ...`.
#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Read a dataset folder, check it, and summarise it.
    ///
    /// Recognises Flickr8k as distributed, the Kaggle layout (Images/ + captions.txt),
    /// COCO captions (captions_*.json) and image folders with .txt sidecars. Nothing is written
    /// inside the folder.
    Inspect(InspectArgs),
}

/// `captioner dataset inspect`.
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

/// `captioner classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `captioner features`.
#[derive(Args, Debug)]
pub struct FeaturesArgs {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Cache folder (default: the cache in the OS data directory).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Images per encoder pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Also cache each photo's feature map before pooling (7x7 cells for Lite0, half
    /// precision; what the attention decoder trains on).
    #[arg(long)]
    pub spatial: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// The one set of training defaults (shared with the app's Train panel).
fn defaults() -> TrainSettings {
    TrainSettings::default()
}

/// `captioner train`. The LSTM size and learning rate default to the chosen decoder's
/// ([`TrainSettings::for_decoder`]).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The dataset folder (train split for training, dev split for early stopping).
    pub dir: PathBuf,
    /// Epochs to train (a resumed run may raise it) [default: 20; 3 with --from].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Captions per batch.
    #[arg(long, default_value_t = defaults().train.batch_size)]
    pub batch: usize,
    /// Initial learning rate (Adam) [default: 0.001; 0.0004 for attention; 0.0001 with --from].
    #[arg(long)]
    pub lr: Option<f32>,
    /// Decoder: `merge` (the tutorial's), `inject` (Show and Tell) or `attention` (Show,
    /// Attend and Tell: soft attention over the encoder's 7x7 feature map).
    #[arg(long, value_enum, default_value_t = DecoderArg::from(defaults().decoder))]
    pub decoder: DecoderArg,
    /// Word embedding size.
    #[arg(long, default_value_t = defaults().embed_dim)]
    pub embed: usize,
    /// LSTM state size [default: 256; 512 for attention].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// The attention decoder's attention size.
    #[arg(long, default_value_t = defaults().attention_dim)]
    pub attention_dim: usize,
    /// Dropout probability.
    #[arg(long, default_value_t = defaults().dropout)]
    pub dropout: f32,
    /// Epochs without a better dev BLEU-4 before training stops (0: never) [default: 5; 0
    /// with --from].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Dev images decoded each epoch for BLEU-4.
    #[arg(long, default_value_t = defaults().train.dev_bleu_images)]
    pub dev_bleu_images: usize,
    /// Training engine: `cpu` (the hand-written CPU engine, fastest on the CPU), `candle`
    /// (candle's autograd, any device), or `auto` (the CPU engine on the CPU, candle on a GPU).
    #[arg(long, default_value_t = defaults().train.engine)]
    pub engine: captioner::train::Engine,
    /// Random seed (weights, batch order, dropout).
    #[arg(long, default_value_t = defaults().train.seed)]
    pub seed: u64,
    /// Output folder (checkpoints `last/` and `best/`); default: a new folder under the OS
    /// data directory's models/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Fine-tune this model folder (`default`: the shipped model) instead of training a new
    /// one: start from its weights and keep its decoder and vocabulary (caption words outside
    /// it count as unknown; --decoder, --embed, --hidden, --cleaning and --min-count are
    /// ignored). Its learning rate is 0.0001 unless --lr says otherwise.
    #[arg(long, value_name = "MODEL")]
    pub from: Option<PathBuf>,
    /// Cache folder for image features.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Print one JSON object per event instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// Decoding options shared by `caption`, `eval`, `batch` and `calibrate`.
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Model folder (default: the shipped model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Beam width; 1 decodes greedily.
    #[arg(long, default_value_t = captioner::pipeline::DecodeOptions::default().beam)]
    pub beam: usize,
    /// Longest caption in words.
    #[arg(long, default_value_t = captioner::pipeline::DecodeOptions::default().max_len)]
    pub max_len: usize,
    /// Block repeated n-grams of this many words (0: no blocking).
    #[arg(long, default_value_t = captioner::decoder::DEFAULT_BLOCK_NGRAM)]
    pub block_ngram: usize,
    /// Beam search ranks captions by log-probability / length^ALPHA (0 to 4).
    #[arg(long, default_value_t = captioner::decoder::DEFAULT_LENGTH_ALPHA)]
    pub length_alpha: f32,
    /// Grounded decoding (captions say what the photo shows; per-word support), or `off`:
    /// the plain beam search of before.
    #[arg(long, value_enum, default_value_t = GroundingArg::On)]
    pub grounding: GroundingArg,
}

/// `--grounding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroundingArg {
    On,
    Off,
}

/// `captioner caption`.
#[derive(Args, Debug)]
pub struct CaptionArgs {
    /// Image files.
    pub images: Vec<PathBuf>,
    /// An image file (the tutorial's `-i IMAGE` form).
    #[arg(short = 'i', long = "image")]
    pub image: Vec<PathBuf>,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Start every caption with these words; the model goes on from them ("a cat" ->
    /// "a cat sitting on a windowsill"). Words the model does not know are kept as written.
    /// The confidence covers the words the model adds.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub start_with: String,
    /// Also print each word's probability and the beam's alternatives.
    #[arg(long)]
    pub verbose: bool,
    /// Write where the model looked for each word into DIR: one PNG per word, the photo with
    /// the word's attention map over it (attention models only).
    #[arg(long, value_name = "DIR")]
    pub attention: Option<PathBuf>,
    /// Print JSON: one record per photo, as `batch --json` writes them (docs/formats.md).
    #[arg(long)]
    pub json: bool,
}

/// `captioner batch`.
#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The folder of photos, or a tar archive of photos (WebDataset layout: read in place).
    #[arg(required_unless_present = "files_from", conflicts_with = "files_from")]
    pub dir: Option<PathBuf>,
    /// Caption the photos this file lists instead of a folder: one photo or tar archive per
    /// line, relative to the list's folder (or the file is itself a tar archive).
    #[arg(long, value_name = "LIST")]
    pub files_from: Option<PathBuf>,
    /// Caption only the K-th of N parts of the sorted photo list (K from 0), into
    /// OUT/shard-K-of-N.jsonl, resumably, with a manifest when done (docs/cluster.md).
    #[arg(long, value_name = "K/N", requires = "out", value_parser = parse_shard,
          conflicts_with_all = ["sidecars", "xmp_sidecars", "embed", "alt_html", "alt_csv", "alt_json", "csv", "json"])]
    pub shard: Option<captioner::jobs::shard::ShardSpec>,
    /// The folder a shard's files go into (with --shard).
    #[arg(long, value_name = "OUT", requires = "shard")]
    pub out: Option<PathBuf>,
    /// Threads to caption with (default: SLURM_CPUS_PER_TASK when set, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Start every caption with these words; the model goes on from them ("a cat" ->
    /// "a cat sitting on a windowsill"). Unlike --prefix, the words are part of the caption
    /// the model writes.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub start_with: String,
    /// Write a `.txt` sidecar beside each photo (existing ones are left alone unless
    /// --overwrite is given).
    #[arg(long)]
    pub sidecars: bool,
    /// Write each caption to an XMP sidecar (`photo.xmp`, read by digiKam, Lightroom and
    /// other photo managers): `dc:description` and `dc:subject`. Photos that already have a
    /// description are left alone unless --overwrite is given.
    #[arg(long)]
    pub xmp_sidecars: bool,
    /// Write each caption into the photo itself (JPEG: XMP and EXIF ImageDescription; PNG: XMP),
    /// without re-encoding it. Photos that already have a description are left alone unless
    /// --overwrite is given.
    #[arg(long)]
    pub embed: bool,
    /// Replace existing `.txt` sidecars and existing descriptions in metadata (the same as
    /// `--existing overwrite`).
    #[arg(long, conflicts_with = "existing")]
    pub overwrite: bool,
    /// What to do with a caption already there (a `.txt` sidecar, or a description in the
    /// photo's metadata): `skip` leaves it, `overwrite` replaces it, `append` keeps it and adds
    /// the new caption after it ("old, new"; exporting again does not repeat it).
    #[arg(long, value_parser = captioner::export::Existing::parse)]
    pub existing: Option<captioner::export::Existing>,
    /// Put this text (a trigger word, say) before every caption, after captioning (see
    /// --start-with to have the model continue from words).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Put this text after every caption.
    #[arg(long, default_value = "")]
    pub suffix: String,
    /// Write an HTML page with one `<img alt>` per photo (alt text for the web).
    #[arg(long, value_name = "FILE")]
    pub alt_html: Option<PathBuf>,
    /// Write alt text as CSV with the columns accessibility tools take
    /// (file,alt_text,confidence,tags; files relative to the CSV).
    #[arg(long, value_name = "FILE")]
    pub alt_csv: Option<PathBuf>,
    /// Write alt text as JSON ([{"file", "alt_text", "confidence", "tags"}]).
    #[arg(long, value_name = "FILE")]
    pub alt_json: Option<PathBuf>,
    /// Write the captions as CSV (image,caption,confidence,edited,needs_review,tags,source,
    /// review_reason,review_detail; the Batch panel's CSV export, docs/formats.md).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the captions as JSON (the Batch panel's JSON export, docs/formats.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `captioner watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The folder to watch.
    pub dir: PathBuf,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Start every caption with these words; the model goes on from them.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub start_with: String,
    /// Write a `.txt` sidecar beside each new photo (as `batch --sidecars` does).
    #[arg(long)]
    pub sidecars: bool,
    /// Write each caption to an XMP sidecar (`photo.xmp`), as `batch --xmp-sidecars` does.
    #[arg(long)]
    pub xmp_sidecars: bool,
    /// Write each caption into the photo itself, as `batch --embed` does.
    #[arg(long)]
    pub embed: bool,
    /// What to do with a photo that already has a caption (a `.txt` sidecar, a description in
    /// its metadata): `skip` leaves it alone, `overwrite` replaces it, `append` adds to it.
    #[arg(long, value_parser = captioner::export::Existing::parse, default_value = "skip")]
    pub existing: captioner::export::Existing,
    /// Put this text before every caption, after captioning.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Put this text after every caption.
    #[arg(long, default_value = "")]
    pub suffix: String,
}

fn parse_shard(s: &str) -> Result<captioner::jobs::shard::ShardSpec, String> {
    s.parse()
        .map_err(|e: captioner::jobs::shard::ShardError| e.to_string())
}

/// `captioner merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The folder the shards were written into (`batch --shard K/N --out OUT`).
    pub out: PathBuf,
    /// Write the merged captions as JSON (the same file `batch --json` writes).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the merged captions as CSV (the same file `batch --csv` writes).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write a `.txt` sidecar beside each photo, as `batch --sidecars` does (existing ones are
    /// left alone unless --overwrite is given).
    #[arg(long)]
    pub sidecars: bool,
    /// Replace existing `.txt` sidecars (with --sidecars).
    #[arg(long, requires = "sidecars")]
    pub overwrite: bool,
}

/// `captioner eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The dataset folder.
    pub dir: PathBuf,
    /// The split to score.
    #[arg(long, value_enum, default_value_t = SplitArg::Dev)]
    pub split: SplitArg,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Cache folder for image features.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Also measure the calibrated confidence on the split mixed with the photos of this folder
    /// (photos unlike the dataset's, with `captions.txt`: one photo name, a tab and its caption per line). May be
    /// given more than once.
    #[arg(long, value_name = "DIR")]
    pub extra: Vec<PathBuf>,
    /// Keep the scores in the model's meta.json (as the Models view's Evaluate does; the
    /// Models view and `captioner models` show a dev split's scores).
    #[arg(long)]
    pub store: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// `captioner calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The dataset folder (its train and dev splits are used; never the test split).
    pub dir: PathBuf,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Cache folder for image features.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// A folder of photos unlike the dataset's, with `captions.txt` (one photo name, a tab and its caption per line):
    /// measured mixed with the dev photos, never fitted on. May be given more than once.
    #[arg(long, value_name = "DIR")]
    pub unfamiliar: Vec<PathBuf>,
    /// Measure only; write nothing into the model folder.
    #[arg(long)]
    pub dry_run: bool,
    /// Write each measured photo's signals, per-photo CIDEr-D and caption to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub signals: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// `captioner concepts`.
#[derive(Args, Debug)]
pub struct ConceptsArgs {
    /// The model folder that gets the detector.
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset folder (its train split is fitted on, its dev split measured; never the
    /// test split).
    #[arg(default_value = "../shared/flickr8k")]
    pub dir: PathBuf,
    /// Cache folder for image features.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Words kept at most (the most frequent content words of the training captions).
    #[arg(long, default_value_t = captioner::concepts::train::ConceptOptions::default().words)]
    pub words: usize,
    /// A word needs at least this many training photos whose captions mention it.
    #[arg(long, default_value_t = captioner::concepts::train::ConceptOptions::default().min_photos)]
    pub min_photos: usize,
    /// Labels: `any` (a word applies when a caption mentions it) or `soft` (the share of the
    /// photo's captions that mention it).
    #[arg(long, default_value = "any")]
    pub labels: LabelsArg,
    /// Passes over the training photos.
    #[arg(long, default_value_t = captioner::concepts::train::ConceptOptions::default().epochs)]
    pub epochs: usize,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = captioner::concepts::train::ConceptOptions::default().l2)]
    pub l2: f32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = captioner::concepts::train::ConceptOptions::default().learning_rate)]
    pub learning_rate: f32,
    /// Measure only; write nothing into the model folder.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub text: TextArgs,
}

/// How a photo's captions become its concept labels (`--labels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabelsArg {
    /// 1 when at least one caption mentions the word.
    Any,
    /// The share of the captions that mention it.
    Soft,
}

/// Text-preparation options shared by the commands that read a dataset.
#[derive(Args, Debug, Clone)]
pub struct TextArgs {
    /// Caption cleaning: `natural` keeps one-letter words such as "a"; `tutorial` drops them as
    /// the original tutorial did.
    #[arg(long, default_value = "natural")]
    pub cleaning: Cleaning,
    /// Words seen fewer times than this in the training captions become the unknown word (`<unk>`).
    #[arg(long, default_value_t = ImportOptions::default().min_count)]
    pub min_count: usize,
    /// Train/dev/test fractions for datasets without split files.
    #[arg(long, default_value = "80/10/10", value_parser = SplitFractions::parse)]
    pub split_fractions: SplitFractions,
}
