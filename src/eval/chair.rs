//! Object hallucination: CHAIR (Rohrbach et al., "Object Hallucination in Image Captioning",
//! EMNLP 2018), over the 80 COCO object categories.
//!
//! A caption *mentions* an object when one of its words (or two- or three-word names) is a
//! name of one of the 80 categories or a synonym of one ([`mentions`]: "man", "girls",
//! "people" and "skier" are mentions of `person`, "puppy" of `dog`, "sofa" of `couch`). A
//! mention is *hallucinated* when its category is not among the photo's ground-truth objects:
//! the objects its reference captions mention ([`objects_of_references`]), plus, for a COCO
//! dataset with `instances_*.json` beside its `captions_*.json`, the categories of its
//! instance annotations ([`instance_categories`]).
//!
//! - CHAIR-s: the share of captions with at least one hallucinated mention;
//! - CHAIR-i: the share of mentions that are hallucinated (every mention counts, so "a man and
//!   a woman" is two mentions of `person`, as in the paper's code);
//! - grounded: the share of captions with at least one mention that is in the photo.
//!
//! The matching follows the paper's public code in spirit (a synonym list per category,
//! plurals, two-word names matched before single words, "baby elephant" an elephant and not
//! a person, "passenger jet" a jet), with its own list and a few more guards against false
//! hits: "hot dog" is a hot dog and no dog, "teddy bear" no bear, "pit bull" and "sheep dog"
//! dogs, "dirt bike" a motorcycle, "computer mouse" a mouse and no laptop; "orange" is the
//! fruit only where it is not a colour ("an orange shirt", "orange and white", "is orange"
//! are colours; "an orange on a plate", "oranges" fruit); names that only qualify a place or
//! another thing mention nothing ("bus stop", "train tracks", "flower bed", "chair lift",
//! "jet ski", "table tennis", "tie dye"). Words that are too often something else are left
//! out: "suit" (not a suitcase), "bow" (not a tie), "glass" (a material more often than a wine
//! glass; "glass of wine" counts), "scooter" (mostly a child's kick scooter), "ski" (mostly
//! "ski slope", "ski lift"; "skis" counts), "football" and "basketball" (mostly the game).
//! Bare "bat" counts as a baseball bat (captions of bats as animals are rare).
//!
//! Words are those of [`super::tokenize`] (lowercase, punctuation deleted), so "T-shirt" is
//! `tshirt` and "hot-dog" is `hotdog` (also a name of the category).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The 80 COCO object categories, by the names COCO's `instances_*.json` gives them.
pub const CATEGORIES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The words and names that mention each category (singular; plurals and possessives are
/// made by [`forms`]). Every category's own name is among them, except where COCO's name is
/// not what people write ("sports ball": a ball; "dining table": a table; "tv" is).
const SYNONYMS: &[(&str, &[&str])] = &[
    (
        "person",
        &[
            "person",
            "people",
            "man",
            "woman",
            "boy",
            "girl",
            "child",
            "kid",
            "baby",
            "toddler",
            "infant",
            "youngster",
            "lady",
            "guy",
            "gentleman",
            "adult",
            "teenager",
            "teen",
            "someone",
            "somebody",
            "friend",
            "crowd",
            "audience",
            "player",
            "rider",
            "biker",
            "cyclist",
            "bicyclist",
            "motorcyclist",
            "skier",
            "snowboarder",
            "surfer",
            "skateboarder",
            "skater",
            "swimmer",
            "climber",
            "hiker",
            "runner",
            "jogger",
            "dancer",
            "gymnast",
            "cheerleader",
            "acrobat",
            "ballerina",
            "athlete",
            "worker",
            "chef",
            "policeman",
            "policewoman",
            "officer",
            "cop",
            "soldier",
            "fireman",
            "firefighter",
            "lifeguard",
            "cowboy",
            "cowgirl",
            "bride",
            "groom",
            "mother",
            "father",
            "mom",
            "dad",
            "son",
            "daughter",
            "brother",
            "sister",
            "grandmother",
            "grandfather",
            "grandma",
            "grandpa",
            "husband",
            "wife",
            "student",
            "tourist",
            "pedestrian",
            "driver",
            "passenger",
            "spectator",
            "musician",
            "guitarist",
            "drummer",
            "singer",
            "performer",
            "artist",
            "painter",
            "clown",
            "boxer",
            "wrestler",
            "jockey",
            "fisherman",
            "photographer",
            "referee",
            "umpire",
            "goalie",
            "goalkeeper",
            "businessman",
            "vendor",
            "shopper",
            "customer",
            "waiter",
            "waitress",
            "nurse",
            "doctor",
            "teacher",
            "kayaker",
            "canoeist",
            "rower",
            "paddler",
            "sailor",
            "golfer",
            "skydiver",
            "diver",
            "windsurfer",
            "kiteboarder",
            "wakeboarder",
            "bodyboarder",
            "rollerblader",
            "hunter",
            "farmer",
            "shepherd",
            "baker",
            "priest",
            "nun",
            "monk",
            "protester",
            "competitor",
            "contestant",
            "bystander",
            "onlooker",
            "visitor",
            "traveler",
            "traveller",
            "commuter",
        ],
    ),
    ("bicycle", &["bicycle", "bike", "mountain bike"]),
    (
        "car",
        &[
            "car",
            "taxi",
            "sedan",
            "suv",
            "jeep",
            "van",
            "minivan",
            "limo",
            "limousine",
            "racecar",
        ],
    ),
    (
        "motorcycle",
        &[
            "motorcycle",
            "motorbike",
            "motor bike",
            "motor cycle",
            "dirt bike",
            "moped",
        ],
    ),
    (
        "airplane",
        &[
            "airplane",
            "aeroplane",
            "air plane",
            "plane",
            "jet",
            "aircraft",
            "airliner",
            "jetliner",
        ],
    ),
    ("bus", &["bus", "busses", "minibus"]),
    (
        "train",
        &[
            "train",
            "locomotive",
            "tram",
            "streetcar",
            "trolley",
            "subway car",
        ],
    ),
    ("truck", &["truck", "lorry", "firetruck"]),
    (
        "boat",
        &[
            "boat",
            "ship",
            "canoe",
            "kayak",
            "sailboat",
            "sail boat",
            "yacht",
            "ferry",
            "rowboat",
            "row boat",
            "speedboat",
            "motorboat",
            "raft",
        ],
    ),
    (
        "traffic light",
        &["traffic light", "stoplight", "stop light", "traffic signal"],
    ),
    ("fire hydrant", &["fire hydrant", "hydrant"]),
    ("stop sign", &["stop sign"]),
    ("parking meter", &["parking meter"]),
    ("bench", &["bench", "pew"]),
    (
        "bird",
        &[
            "bird",
            "duck",
            "goose",
            "seagull",
            "gull",
            "pigeon",
            "parrot",
            "swan",
            "owl",
            "eagle",
            "hawk",
            "rooster",
            "hen",
            "crow",
            "sparrow",
            "pelican",
            "flamingo",
            "heron",
            "penguin",
            "ostrich",
            "peacock",
            "robin",
            "finch",
            "hummingbird",
            "parakeet",
            // The plural only: "chicken" is as often food ("a plate of chicken").
            "chickens",
        ],
    ),
    ("cat", &["cat", "kitten", "kitty", "tabby"]),
    (
        "dog",
        &[
            "dog",
            "puppy",
            "pup",
            "doggy",
            "doggie",
            "hound",
            "poodle",
            "terrier",
            "retriever",
            "labrador",
            "collie",
            "beagle",
            "dachshund",
            "chihuahua",
            "greyhound",
            "husky",
            "spaniel",
            "bulldog",
            "pitbull",
            "pit bull",
            "rottweiler",
            "german shepherd",
            "sheepdog",
            "sheep dog",
            "dalmatian",
            "pug",
            "mutt",
            "corgi",
            "schnauzer",
            "boxer dog",
            "bird dog",
        ],
    ),
    (
        "horse",
        &[
            "horse",
            "pony",
            "foal",
            "colt",
            "stallion",
            "mare",
            "racehorse",
            "race horse",
        ],
    ),
    ("sheep", &["sheep", "lamb", "ram", "ewe"]),
    (
        "cow",
        &[
            "cow",
            "cattle",
            "calf",
            "bull",
            "ox",
            "buffalo",
            "buffaloes",
            "bison",
            "longhorn",
        ],
    ),
    ("elephant", &["elephant"]),
    ("bear", &["bear", "grizzly"]),
    ("zebra", &["zebra"]),
    ("giraffe", &["giraffe"]),
    (
        "backpack",
        &["backpack", "back pack", "knapsack", "rucksack"],
    ),
    ("umbrella", &["umbrella", "parasol"]),
    ("handbag", &["handbag", "hand bag", "purse"]),
    ("tie", &["tie", "necktie", "bow tie"]),
    ("suitcase", &["suitcase", "luggage"]),
    ("frisbee", &["frisbee", "flying disc"]),
    ("skis", &["skis"]),
    ("snowboard", &["snowboard", "snow board"]),
    ("sports ball", &["ball", "sports ball"]),
    ("kite", &["kite"]),
    ("baseball bat", &["baseball bat", "bat"]),
    (
        "baseball glove",
        &["baseball glove", "baseball mitt", "catchers mitt", "mitt"],
    ),
    ("skateboard", &["skateboard", "skate board"]),
    (
        "surfboard",
        &[
            "surfboard",
            "surf board",
            "bodyboard",
            "body board",
            "boogie board",
            "wakeboard",
            "paddleboard",
        ],
    ),
    (
        "tennis racket",
        &["tennis racket", "tennis racquet", "racket", "racquet"],
    ),
    ("bottle", &["bottle"]),
    (
        "wine glass",
        &[
            "wine glass",
            "wineglass",
            "glass of wine",
            "glasses of wine",
        ],
    ),
    ("cup", &["cup", "mug", "teacup", "tea cup", "coffee cup"]),
    ("fork", &["fork"]),
    ("knife", &["knife"]),
    ("spoon", &["spoon"]),
    ("bowl", &["bowl"]),
    ("banana", &["banana"]),
    ("apple", &["apple"]),
    (
        "sandwich",
        &["sandwich", "burger", "hamburger", "cheeseburger"],
    ),
    ("orange", &["orange"]),
    ("broccoli", &["broccoli"]),
    ("carrot", &["carrot"]),
    ("hot dog", &["hot dog", "hotdog"]),
    ("pizza", &["pizza"]),
    ("donut", &["donut", "doughnut"]),
    ("cake", &["cake", "cupcake", "cheesecake"]),
    (
        "chair",
        &["chair", "armchair", "stool", "high chair", "highchair"],
    ),
    (
        "couch",
        &["couch", "sofa", "loveseat", "futon", "settee", "recliner"],
    ),
    (
        "potted plant",
        &["potted plant", "houseplant", "house plant"],
    ),
    ("bed", &["bed"]),
    ("dining table", &["dining table", "table", "desk"]),
    ("toilet", &["toilet", "urinal", "toilet seat"]),
    ("tv", &["tv", "television", "computer monitor", "monitor"]),
    ("laptop", &["laptop", "laptop computer", "computer"]),
    ("mouse", &["mouse", "computer mouse"]),
    ("remote", &["remote", "remote control"]),
    ("keyboard", &["keyboard", "computer keyboard"]),
    (
        "cell phone",
        &[
            "cell phone",
            "cellphone",
            "mobile phone",
            "smartphone",
            "phone",
            "telephone",
            "iphone",
        ],
    ),
    ("microwave", &["microwave"]),
    ("oven", &["oven", "stove", "stovetop", "stove top"]),
    ("toaster", &["toaster"]),
    ("sink", &["sink"]),
    ("refrigerator", &["refrigerator", "fridge", "freezer"]),
    ("book", &["book", "novel"]),
    ("clock", &["clock"]),
    ("vase", &["vase"]),
    ("scissors", &["scissors", "scissor"]),
    ("teddy bear", &["teddy bear", "teddybear", "teddy"]),
    (
        "hair drier",
        &["hair drier", "hair dryer", "hairdryer", "blow dryer"],
    ),
    ("toothbrush", &["toothbrush", "tooth brush"]),
];

/// Names whose first word is a category's but that mention no object: a place, a part or a
/// quality of something else ("bus stop", "chair lift", "tie dye").
const NOT_OBJECTS: &[&str] = &[
    "bus stop",
    "bus station",
    "train station",
    "train track",
    "train platform",
    "flower bed",
    "river bed",
    "table tennis",
    "jet ski",
    "chair lift",
    "skate bowl",
    "super bowl",
    "skateboard ramp",
    "skateboard park",
    "bike path",
    "bike trail",
    "bike lane",
    "bird feeder",
    "bird house",
    "bird bath",
    "toilet paper",
    "phone booth",
    "tie dye",
    "ball cap",
    "ball gown",
    "snow man",
    "fork of a tree",
    "fork of the tree",
    "fork in the road",
    "koala bear",
    "bull moose",
    "bull elk",
];

/// Words before an animal's name that would otherwise be a person ("baby elephant", "mother
/// duck") or a cow ("bull elephant"), and before a vehicle's ("passenger jet").
const ANIMAL_QUALIFIERS: &[&str] = &["baby", "adult", "mother", "mama", "momma", "bull"];
const ANIMALS: &[&str] = &[
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
];
const VEHICLE_QUALIFIERS: &[&str] = &["passenger"];
const VEHICLES: &[&str] = &["airplane", "bus", "train", "boat", "car"];

/// Colour words, for telling "orange" the colour from the fruit.
const COLOURS: &[&str] = &[
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
    "grey",
    "tan",
    "gold",
    "golden",
    "silver",
    "beige",
    "maroon",
    "teal",
    "navy",
    "violet",
    "multicolored",
    "colorful",
];

/// Words after "orange" that leave it the fruit ("an orange on a plate", "orange slices");
/// anything else after it (a noun: "orange shirt", "orange cat") makes it a colour.
const FRUIT_FOLLOWERS: &[&str] = &[
    "and", "or", "on", "in", "with", "of", "is", "are", "was", "were", "sits", "sitting", "lies",
    "lying", "next", "near", "beside", "by", "at", "to", "from", "that", "which", "the", "a", "an",
    "has", "cut", "peeled", "sliced", "slice", "slices", "half", "halves", "peel", "peels",
    "wedge", "wedges", "segment", "segments", "tree", "trees",
];

/// Words before "orange" that make it a colour ("is orange", "bright orange").
const COLOUR_LEADERS: &[&str] = &[
    "is", "are", "was", "were", "bright", "dark", "light", "pale", "neon", "burnt", "deep", "all",
    "mostly",
];

/// Irregular plurals of the words in [`SYNONYMS`] (words ending in "man" make "men" by rule).
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "persons"),
    ("child", "children"),
    ("knife", "knives"),
    ("wife", "wives"),
    ("calf", "calves"),
    ("goose", "geese"),
    ("mouse", "mice"),
    ("ox", "oxen"),
    ("sheep", "sheep"),
    ("cattle", "cattle"),
    ("people", "people"),
    ("skis", "skis"),
    ("scissors", "scissors"),
    ("luggage", "luggage"),
    ("broccoli", "broccoli"),
    ("audience", "audiences"),
    ("buffalo", "buffalos"),
    ("busses", "busses"),
    ("buffaloes", "buffaloes"),
    ("someone", "someone"),
    ("somebody", "somebody"),
];

/// The plural of one word.
fn plural(word: &str) -> String {
    if let Some((_, p)) = IRREGULAR.iter().find(|(w, _)| *w == word) {
        return (*p).to_string();
    }
    if let Some(stem) = word.strip_suffix("man") {
        return format!("{stem}men");
    }
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| word.ends_with(e))
    {
        return format!("{word}es");
    }
    if let Some(stem) = word.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    format!("{word}s")
}

/// The written forms of a name: as given, its plural and the possessives of both as
/// [`super::tokenize`] leaves them ("man's" is `mans`, "men's" `mens`); for a name of several
/// words, of its last word.
fn forms(name: &str) -> Vec<Vec<String>> {
    let words: Vec<&str> = name.split(' ').collect();
    let Some((last, head)) = words.split_last() else {
        return Vec::new();
    };
    let p = plural(last);
    let mut lasts = vec![last.to_string(), p.clone(), format!("{last}s")];
    if !p.ends_with('s') {
        lasts.push(format!("{p}s"));
    }
    lasts.sort();
    lasts.dedup();
    lasts
        .into_iter()
        .map(|l| {
            head.iter()
                .map(|w| w.to_string())
                .chain(std::iter::once(l))
                .collect()
        })
        .collect()
}

/// What a name found in a caption is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Object(&'static str),
    NotAnObject,
}

/// Every name (as its words) and what it is; built once.
struct Lexicon {
    names: HashMap<Vec<String>, Name>,
    longest: usize,
}

fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut names: HashMap<Vec<String>, Name> = HashMap::new();
        for (category, synonyms) in SYNONYMS {
            for s in *synonyms {
                for f in forms(s) {
                    names.insert(f, Name::Object(category));
                }
            }
        }
        let qualified = |names: &mut HashMap<Vec<String>, Name>,
                         qualifiers: &[&str],
                         categories: &[&str]| {
            for (category, synonyms) in SYNONYMS.iter().filter(|(c, _)| categories.contains(c)) {
                for s in synonyms.iter().filter(|s| !s.contains(' ')) {
                    for f in forms(s) {
                        for q in qualifiers {
                            let mut words = vec![q.to_string()];
                            words.extend(f.iter().cloned());
                            names.insert(words, Name::Object(category));
                        }
                    }
                }
            }
        };
        qualified(&mut names, ANIMAL_QUALIFIERS, ANIMALS);
        qualified(&mut names, VEHICLE_QUALIFIERS, VEHICLES);
        for n in NOT_OBJECTS {
            for f in forms(n) {
                names.insert(f, Name::NotAnObject);
            }
        }
        let longest = names.keys().map(Vec::len).max().unwrap_or(1);
        Lexicon { names, longest }
    })
}

/// One object a caption names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The COCO category (one of [`CATEGORIES`]).
    pub category: &'static str,
    /// The words that name it, as [`super::tokenize`] gives them ("hot dogs").
    pub words: String,
    /// The index of its first word among the caption's words.
    pub position: usize,
}

/// Whether the word `orange` at `i` of `words` is the colour rather than the fruit.
fn orange_is_a_colour(words: &[String], i: usize) -> bool {
    let at = |k: usize| words.get(k).map(String::as_str);
    let is_colour = |w: Option<&str>| w.is_some_and(|w| COLOURS.contains(&w));
    // "black and orange", "is orange", "bright orange".
    if i >= 1 {
        let before = at(i - 1);
        if before.is_some_and(|w| COLOUR_LEADERS.contains(&w)) {
            return true;
        }
        if i >= 2 && matches!(before, Some("and" | "or")) && is_colour(at(i - 2)) {
            return true;
        }
    }
    match at(i + 1) {
        // At the end: a colour only after a colour word ("white and orange"), handled above.
        None => false,
        // "orange and white": a colour.
        Some("and" | "or") => is_colour(at(i + 2)),
        Some(next) => !FRUIT_FOLLOWERS.contains(&next),
    }
}

/// The objects `caption` names, in order: every mention of one of the 80 COCO categories
/// (see the module documentation for what counts).
///
/// ```
/// use captioner::eval::chair::mentions;
/// let m = mentions("Two girls eat hot dogs beside an orange tent");
/// let names: Vec<&str> = m.iter().map(|m| m.category).collect();
/// assert_eq!(names, ["person", "hot dog"]);
/// ```
pub fn mentions(caption: &str) -> Vec<Mention> {
    let words = super::tokenize(caption);
    let lex = lexicon();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut step = 1;
        for n in (1..=lex.longest.min(words.len() - i)).rev() {
            let Some(name) = lex.names.get(&words[i..i + n]) else {
                continue;
            };
            step = n;
            if let Name::Object(category) = *name {
                let colour = n == 1 && words[i] == "orange" && orange_is_a_colour(&words, i);
                if !colour {
                    out.push(Mention {
                        category,
                        words: words[i..i + n].join(" "),
                        position: i,
                    });
                }
            }
            break;
        }
        i += step;
    }
    out
}

/// The categories `caption` mentions.
pub fn objects(caption: &str) -> BTreeSet<&'static str> {
    mentions(caption).into_iter().map(|m| m.category).collect()
}

/// The categories any of a photo's reference captions mention.
pub fn objects_of_references(references: &[String]) -> BTreeSet<&'static str> {
    references.iter().flat_map(|r| objects(r)).collect()
}

/// The category of this COCO name, as [`CATEGORIES`] holds it.
pub fn category(name: &str) -> Option<&'static str> {
    let name = name.trim().to_lowercase();
    CATEGORIES.iter().copied().find(|c| *c == name)
}

/// Counts and shares of hallucinated objects over a set of captions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChairFigures {
    /// Captions measured.
    pub captions: usize,
    /// Captions that name at least one object.
    pub captions_with_objects: usize,
    /// Captions that name at least one object not in the photo.
    pub hallucinating_captions: usize,
    /// Captions that name at least one object in the photo.
    pub grounded_captions: usize,
    /// Object mentions (every occurrence).
    pub mentions: usize,
    /// Mentions of objects not in the photo.
    pub hallucinated_mentions: usize,
    /// CHAIR-s: `hallucinating_captions / captions` (0 without captions).
    pub chair_s: f64,
    /// CHAIR-i: `hallucinated_mentions / mentions` (0 without mentions).
    pub chair_i: f64,
    /// `grounded_captions / captions` (0 without captions).
    pub grounded: f64,
    /// The categories named although not in the photo, with how many captions named each,
    /// most often first (ties by name).
    pub invented: Vec<(String, usize)>,
}

impl ChairFigures {
    /// Measures `captions[i]` against `truths[i]`, the objects in photo `i` (only the first
    /// `min(len)` pairs count).
    pub fn measure(captions: &[String], truths: &[BTreeSet<&'static str>]) -> ChairFigures {
        let mut f = ChairFigures::default();
        let mut invented: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (caption, truth) in captions.iter().zip(truths) {
            let m = mentions(caption);
            f.captions += 1;
            f.mentions += m.len();
            let wrong: BTreeSet<&'static str> = m
                .iter()
                .map(|m| m.category)
                .filter(|c| !truth.contains(c))
                .collect();
            f.hallucinated_mentions += m.iter().filter(|m| !truth.contains(m.category)).count();
            f.captions_with_objects += usize::from(!m.is_empty());
            f.hallucinating_captions += usize::from(!wrong.is_empty());
            f.grounded_captions += usize::from(m.iter().any(|m| truth.contains(m.category)));
            for c in wrong {
                *invented.entry(c).or_insert(0) += 1;
            }
        }
        let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        f.chair_s = share(f.hallucinating_captions, f.captions);
        f.chair_i = share(f.hallucinated_mentions, f.mentions);
        f.grounded = share(f.grounded_captions, f.captions);
        let mut inv: Vec<(String, usize)> = invented
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        inv.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        f.invented = inv;
        f
    }

    /// One line for people: `CHAIR-s 0.110  CHAIR-i 0.071  grounded 0.870 (110 of 1000
    /// captions name an object not in the photo; most often person 60, dog 30, ...)`.
    pub fn summary(&self) -> String {
        let shown: Vec<String> = self
            .invented
            .iter()
            .take(4)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        format!(
            "CHAIR-s {:.3}  CHAIR-i {:.3}  grounded {:.3} ({} of {} captions name an object not in the photo{}; {} of {} object mentions invented)",
            self.chair_s,
            self.chair_i,
            self.grounded,
            self.hallucinating_captions,
            self.captions,
            if shown.is_empty() {
                String::new()
            } else {
                format!(": {}", shown.join(", "))
            },
            self.hallucinated_mentions,
            self.mentions
        )
    }
}

/// What a photo's ground-truth objects were taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Truth {
    /// The objects the reference captions mention.
    References,
    /// Those and the categories of COCO instance annotations (`instances_*.json`).
    ReferencesAndInstances,
}

impl Truth {
    /// In words, for the text output.
    pub fn describe(self) -> &'static str {
        match self {
            Truth::References => "objects the reference captions mention",
            Truth::ReferencesAndInstances => {
                "objects the reference captions mention and the instance annotations"
            }
        }
    }
}

/// The hallucination figures of an evaluated set of captions: over all of them, and over
/// those not flagged for review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChairReport {
    /// What the ground truth is.
    pub truth: Truth,
    /// Over every caption.
    pub all: ChairFigures,
    /// Over the captions with `needs_review` false; `None` when there is no needs_review
    /// (greedy decoding, or a model without calibration).
    pub not_flagged: Option<ChairFigures>,
}

impl ChairReport {
    /// Measures `captions` against `truths`; `flagged[i]` is caption `i`'s needs_review,
    /// when known for every caption.
    pub fn measure(
        captions: &[String],
        truths: &[BTreeSet<&'static str>],
        flagged: Option<&[bool]>,
        truth: Truth,
    ) -> ChairReport {
        let not_flagged = flagged.map(|flagged| {
            let (c, t): (Vec<String>, Vec<BTreeSet<&'static str>>) = captions
                .iter()
                .zip(truths)
                .zip(flagged)
                .filter(|(_, f)| !**f)
                .map(|((c, t), _)| (c.clone(), t.clone()))
                .unzip();
            ChairFigures::measure(&c, &t)
        });
        ChairReport {
            truth,
            all: ChairFigures::measure(captions, truths),
            not_flagged,
        }
    }
}

/// The hallucination figures of the photos of one extra folder (`captioner eval --extra`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderChair {
    pub folder: PathBuf,
    #[serde(flatten)]
    pub chair: ChairReport,
}

/// A COCO instances file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InstancesError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a COCO instances file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct InstancesFile {
    images: Vec<InstanceImage>,
    annotations: Vec<InstanceAnnotation>,
    categories: Vec<InstanceCategory>,
}

#[derive(Deserialize)]
struct InstanceImage {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct InstanceAnnotation {
    image_id: u64,
    category_id: u64,
}

#[derive(Deserialize)]
struct InstanceCategory {
    id: u64,
    name: String,
}

/// The instances file beside a COCO captions file: `captions_X.json` -> `instances_X.json`
/// in the same folder.
pub fn instances_file_for(captions_file: &Path) -> Option<PathBuf> {
    let name = captions_file.file_name()?.to_str()?;
    let rest = name.strip_prefix("captions_")?;
    Some(captions_file.with_file_name(format!("instances_{rest}")))
}

/// Reads one COCO instances file: the categories annotated in each image, by the image's
/// `file_name` (images without annotations are absent; categories that are not one of
/// [`CATEGORIES`] are left out).
pub fn read_instances(
    path: &Path,
) -> Result<HashMap<String, BTreeSet<&'static str>>, InstancesError> {
    let text = std::fs::read(path).map_err(|source| InstancesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    let file: InstancesFile =
        serde_json::from_slice(bytes).map_err(|source| InstancesError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let categories: HashMap<u64, &'static str> = file
        .categories
        .iter()
        .filter_map(|c| Some((c.id, category(&c.name)?)))
        .collect();
    let names: HashMap<u64, &str> = file
        .images
        .iter()
        .map(|i| (i.id, i.file_name.as_str()))
        .collect();
    let mut out: HashMap<String, BTreeSet<&'static str>> = HashMap::new();
    for a in &file.annotations {
        if let (Some(name), Some(c)) = (names.get(&a.image_id), categories.get(&a.category_id)) {
            out.entry((*name).to_string()).or_default().insert(c);
        }
    }
    Ok(out)
}

/// The instance categories of a COCO dataset's images, from the `instances_*.json` beside each
/// of its `captions_*.json`, by file name; `None` when there is no such file.
pub fn instance_categories(
    caption_files: &[PathBuf],
) -> Result<Option<HashMap<String, BTreeSet<&'static str>>>, InstancesError> {
    let mut out: Option<HashMap<String, BTreeSet<&'static str>>> = None;
    for f in caption_files {
        let Some(path) = instances_file_for(f).filter(|p| p.is_file()) else {
            continue;
        };
        let all = out.get_or_insert_with(HashMap::new);
        for (name, cats) in read_instances(&path)? {
            all.entry(name).or_default().extend(cats);
        }
    }
    Ok(out)
}

/// The instance categories of the image a dataset names `name` (a path relative to the
/// dataset's images folder, such as `val2017/000000000139.jpg`): found by the whole name or by
/// a tail of it after a `/`.
pub fn instances_of<'a>(
    instances: &'a HashMap<String, BTreeSet<&'static str>>,
    name: &str,
) -> Option<&'a BTreeSet<&'static str>> {
    let mut rest = name;
    loop {
        if let Some(c) = instances.get(rest) {
            return Some(c);
        }
        rest = rest.split_once('/')?.1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(caption: &str) -> Vec<&'static str> {
        mentions(caption).into_iter().map(|m| m.category).collect()
    }

    fn set(c: &[&'static str]) -> BTreeSet<&'static str> {
        c.iter().copied().collect()
    }

    #[test]
    fn every_synonym_belongs_to_a_category_and_every_category_is_named() {
        assert_eq!(CATEGORIES.len(), 80);
        let distinct: BTreeSet<&str> = CATEGORIES.iter().copied().collect();
        assert_eq!(distinct.len(), 80);
        for (c, _) in SYNONYMS {
            assert!(CATEGORIES.contains(c), "{c}");
        }
        for c in CATEGORIES {
            assert!(SYNONYMS.iter().any(|(s, _)| *s == c), "{c} has no synonyms");
        }
        for c in ANIMALS.iter().chain(VEHICLES) {
            assert!(CATEGORIES.contains(c), "{c}");
        }
        // No written form belongs to two categories.
        let mut seen: HashMap<Vec<String>, &str> = HashMap::new();
        for (c, synonyms) in SYNONYMS {
            for s in *synonyms {
                for f in forms(s) {
                    if let Some(other) = seen.insert(f.clone(), c) {
                        assert_eq!(other, *c, "{f:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn people_words_are_persons() {
        for w in [
            "a man",
            "two men",
            "a woman",
            "women",
            "a boy",
            "girls",
            "a child",
            "children",
            "people",
            "a person",
            "kids",
            "a baby",
            "babies",
            "ladies",
            "a skier",
            "policemen",
            "the man's hat",
            "the men's team",
        ] {
            assert_eq!(cats(w), ["person"], "{w}");
        }
    }

    #[test]
    fn synonyms_and_plurals() {
        assert_eq!(cats("a puppy"), ["dog"]);
        assert_eq!(cats("three puppies"), ["dog"]);
        assert_eq!(cats("the dog's ball"), ["dog", "sports ball"]);
        assert_eq!(cats("a sofa"), ["couch"]);
        assert_eq!(cats("two bikes"), ["bicycle"]);
        assert_eq!(cats("a motorbike"), ["motorcycle"]);
        assert_eq!(cats("a tv"), ["tv"]);
        assert_eq!(cats("a television"), ["tv"]);
        assert_eq!(cats("knives and forks"), ["knife", "fork"]);
        assert_eq!(cats("geese"), ["bird"]);
        assert_eq!(cats("benches"), ["bench"]);
        assert_eq!(cats("sandwiches"), ["sandwich"]);
        assert_eq!(cats("two giraffes"), ["giraffe"]);
        assert_eq!(cats("a pair of skis"), ["skis"]);
        assert_eq!(cats("a bowl of broccoli"), ["bowl", "broccoli"]);
    }

    #[test]
    fn two_word_names_are_one_object() {
        assert_eq!(cats("a hot dog"), ["hot dog"]);
        assert_eq!(cats("two hot dogs with mustard"), ["hot dog"]);
        assert_eq!(cats("a hot-dog"), ["hot dog"]);
        assert_eq!(cats("a teddy bear on a bed"), ["teddy bear", "bed"]);
        assert_eq!(cats("teddy bears"), ["teddy bear"]);
        assert_eq!(cats("a cell phone"), ["cell phone"]);
        assert_eq!(cats("a fire hydrant"), ["fire hydrant"]);
        assert_eq!(cats("a stop sign"), ["stop sign"]);
        assert_eq!(cats("wine glasses"), ["wine glass"]);
        assert_eq!(cats("a glass of wine"), ["wine glass"]);
        assert_eq!(cats("a tennis racket"), ["tennis racket"]);
        assert_eq!(cats("a dining table"), ["dining table"]);
        assert_eq!(cats("a traffic light"), ["traffic light"]);
        assert_eq!(cats("a baseball bat"), ["baseball bat"]);
        assert_eq!(
            cats("a baseball player swings a bat"),
            ["person", "baseball bat"]
        );
        assert_eq!(cats("a baseball glove"), ["baseball glove"]);
        assert_eq!(cats("a pit bull"), ["dog"]);
        assert_eq!(cats("a sheep dog"), ["dog"]);
        assert_eq!(cats("a dirt bike"), ["motorcycle"]);
        assert_eq!(cats("a computer mouse"), ["mouse"]);
        assert_eq!(cats("a parking meter"), ["parking meter"]);
        assert_eq!(cats("a potted plant"), ["potted plant"]);
    }

    #[test]
    fn qualified_animals_and_vehicles_are_no_people() {
        assert_eq!(cats("a baby elephant"), ["elephant"]);
        assert_eq!(cats("a mother duck and her ducklings"), ["bird"]);
        assert_eq!(cats("a passenger jet"), ["airplane"]);
        assert_eq!(cats("a baby in a crib"), ["person"]);
        assert_eq!(cats("a passenger waits"), ["person"]);
        assert_eq!(cats("a bull elephant"), ["elephant"]);
        assert_eq!(cats("a bull moose"), Vec::<&str>::new());
        assert_eq!(cats("a bull in a rodeo"), ["cow"]);
        assert_eq!(cats("three chickens"), ["bird"]);
        assert_eq!(cats("a plate of chicken"), Vec::<&str>::new());
    }

    #[test]
    fn orange_the_colour_is_no_fruit() {
        assert_eq!(cats("a man in an orange shirt"), ["person"]);
        assert_eq!(cats("an orange and white cat"), ["cat"]);
        assert_eq!(cats("a black and orange kite"), ["kite"]);
        assert_eq!(cats("the ball is orange"), ["sports ball"]);
        assert_eq!(cats("a shirt that is white and orange"), Vec::<&str>::new());
        assert_eq!(cats("a bright orange car"), ["car"]);
        assert_eq!(cats("an orange on a plate"), ["orange"]);
        assert_eq!(cats("a bowl of oranges"), ["bowl", "orange"]);
        assert_eq!(cats("orange slices"), ["orange"]);
        assert_eq!(cats("an apple and an orange"), ["apple", "orange"]);
        assert_eq!(cats("an orange"), ["orange"]);
    }

    #[test]
    fn places_and_parts_named_after_objects_mention_nothing() {
        for w in [
            "waiting at a bus stop",
            "near the train tracks",
            "a flower bed",
            "a chair lift",
            "riding a jet ski",
            "playing table tennis",
            "a tie dye shirt",
            "a koala in the fork of a tree",
        ] {
            assert_eq!(cats(w), Vec::<&str>::new(), "{w}");
        }
        // Words that are too often something else are no mention.
        assert_eq!(cats("a man in a suit"), ["person"]);
        assert_eq!(cats("a girl with a bow in her hair"), ["person"]);
        assert_eq!(cats("a snowman"), Vec::<&str>::new());
        assert_eq!(cats("a glass window"), Vec::<&str>::new());
    }

    #[test]
    fn a_man_and_his_dog_against_references() {
        let refs: Vec<String> = [
            "a man walks his dog on the beach",
            "a person with a brown dog near the sea",
        ]
        .map(String::from)
        .to_vec();
        let truth = objects_of_references(&refs);
        assert_eq!(truth, set(&["dog", "person"]));
        let captions: Vec<String> = [
            "a man and his dog",                     // both there
            "a man and his dog play with a frisbee", // the frisbee is invented
            "two dogs are playing in the water",     // grounded, nothing invented
            "a cat on a couch",                      // two invented, nothing grounded
            "the sun sets over the sea",             // no object at all
        ]
        .map(String::from)
        .to_vec();
        let truths = vec![truth; captions.len()];
        let f = ChairFigures::measure(&captions, &truths);
        assert_eq!(f.captions, 5);
        assert_eq!(f.captions_with_objects, 4);
        assert_eq!(f.mentions, 2 + 3 + 1 + 2);
        assert_eq!(f.hallucinated_mentions, 1 + 2);
        assert_eq!(f.hallucinating_captions, 2);
        assert_eq!(f.grounded_captions, 3);
        assert!((f.chair_s - 2.0 / 5.0).abs() < 1e-12);
        assert!((f.chair_i - 3.0 / 8.0).abs() < 1e-12);
        assert!((f.grounded - 3.0 / 5.0).abs() < 1e-12);
        assert_eq!(
            f.invented,
            vec![
                ("cat".to_string(), 1),
                ("couch".to_string(), 1),
                ("frisbee".to_string(), 1)
            ]
        );
        // Only the unflagged captions: the first and the third.
        let flagged = [false, true, false, true, true];
        let r = ChairReport::measure(&captions, &truths, Some(&flagged), Truth::References);
        let nf = r.not_flagged.unwrap();
        assert_eq!(nf.captions, 2);
        assert_eq!(nf.hallucinating_captions, 0);
        assert_eq!(nf.grounded, 1.0);
        assert_eq!(r.all, f);
        assert!(f.summary().contains("CHAIR-s 0.400"), "{}", f.summary());
    }

    #[test]
    fn hot_dog_references_do_not_ground_a_dog() {
        let truth = objects_of_references(&["a hot dog with ketchup".to_string()]);
        let f = ChairFigures::measure(&["a dog on the grass".to_string()], &[truth]);
        assert_eq!(f.hallucinating_captions, 1);
        assert_eq!(f.grounded_captions, 0);
        let f = ChairFigures::measure(&[], &[]);
        assert_eq!((f.chair_s, f.chair_i, f.grounded), (0.0, 0.0, 0.0));
    }

    #[test]
    fn instances_files_give_categories_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let captions = dir.path().join("captions_val2017.json");
        std::fs::write(&captions, "{}").unwrap();
        assert_eq!(
            instance_categories(std::slice::from_ref(&captions)).unwrap(),
            None
        );
        let instances = instances_file_for(&captions).unwrap();
        assert_eq!(instances, dir.path().join("instances_val2017.json"));
        std::fs::write(
            &instances,
            r#"{"info": {}, "images": [{"id": 1, "file_name": "a.jpg", "width": 4},
                {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}],
               "annotations": [
                {"id": 7, "image_id": 1, "category_id": 18, "bbox": [0, 0, 1, 1],
                 "segmentation": [[0, 0, 1, 1]], "iscrowd": 0},
                {"id": 8, "image_id": 1, "category_id": 1},
                {"id": 9, "image_id": 1, "category_id": 1},
                {"id": 10, "image_id": 2, "category_id": 58},
                {"id": 11, "image_id": 2, "category_id": 999}],
               "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                {"id": 18, "name": "dog"}, {"id": 58, "name": "hot dog"},
                {"id": 999, "name": "unicorn"}]}"#,
        )
        .unwrap();
        let all = instance_categories(&[captions]).unwrap().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a.jpg"], set(&["dog", "person"]));
        assert_eq!(all["b.jpg"], set(&["hot dog"]));
        assert_eq!(
            instances_of(&all, "val2017/a.jpg"),
            Some(&set(&["dog", "person"]))
        );
        assert_eq!(
            instances_of(&all, "images/val2017/b.jpg"),
            Some(&set(&["hot dog"]))
        );
        assert_eq!(instances_of(&all, "c.jpg"), None);
        // A damaged file is an error that names it.
        std::fs::write(&instances, "{\"images\": [").unwrap();
        let e = read_instances(&instances).unwrap_err();
        assert!(e.to_string().contains("instances_val2017.json"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
