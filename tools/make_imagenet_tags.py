#!/usr/bin/env python3
"""Writes models/imagenet_tags.txt: plain-word tags for each of the 1000 ImageNet classes of
models/imagenet_classes.txt, one line per class in the same order ("tag, tag, ...").

A class's tags are its first name in lower case, the group it belongs to in the WordNet
hierarchy (the classes are ordered by it: dogs are 151-268, cats 281-285, ...; each range's
first and last names are checked below), for objects the head noun of a two-word name
("sports car" -> "car"), and a few hand-written plain words ("espresso" -> "coffee").
Run from the repository root: python3 tools/make_imagenet_tags.py
"""
import re
import sys

names = [l.rstrip("\n") for l in open("models/imagenet_classes.txt")]
assert len(names) == 1000, len(names)
first = [n.split(",")[0].strip() for n in names]

# (first index, last index, first name of first, first name of last, tags)
GROUPS = [
    (0, 6, "tench", "stingray", ["fish"]),
    (2, 4, "great white shark", "hammerhead", ["shark"]),
    (7, 24, "cock", "great grey owl", ["bird"]),
    (25, 29, "European fire salamander", "axolotl", ["salamander", "animal"]),
    (30, 32, "bullfrog", "tailed frog", ["frog"]),
    (33, 37, "loggerhead", "box turtle", ["turtle"]),
    (38, 48, "banded gecko", "Komodo dragon", ["lizard", "reptile"]),
    (49, 50, "African crocodile", "American alligator", ["crocodile", "reptile"]),
    (51, 51, "triceratops", "triceratops", ["dinosaur"]),
    (52, 68, "thunder snake", "sidewinder", ["snake", "reptile"]),
    (72, 77, "black and gold garden spider", "wolf spider", ["spider"]),
    (80, 100, "black grouse", "black swan", ["bird"]),
    (101, 101, "tusker", "tusker", ["elephant"]),
    (102, 106, "echidna", "wombat", ["animal"]),
    (118, 126, "Dungeness crab", "isopod", ["crustacean"]),
    (118, 121, "Dungeness crab", "king crab", ["crab"]),
    (127, 146, "white stork", "albatross", ["bird"]),
    (147, 148, "grey whale", "killer whale", ["whale"]),
    (151, 268, "Chihuahua", "Mexican hairless", ["dog"]),
    (269, 271, "timber wolf", "red wolf", ["wolf"]),
    (273, 275, "dingo", "African hunting dog", ["dog"]),
    (277, 280, "red fox", "grey fox", ["fox"]),
    (281, 285, "tabby", "Egyptian cat", ["cat"]),
    (286, 293, "cougar", "cheetah", ["big cat"]),
    (294, 297, "brown bear", "sloth bear", ["bear"]),
    (300, 320, "tiger beetle", "damselfly", ["insect"]),
    (321, 326, "admiral", "lycaenid", ["butterfly", "insect"]),
    (330, 332, "wood rabbit", "Angora", ["rabbit"]),
    (333, 338, "hamster", "guinea pig", ["rodent", "animal"]),
    (339, 339, "sorrel", "sorrel", ["horse"]),
    (341, 343, "hog", "warthog", ["pig"]),
    (345, 347, "ox", "bison", ["cattle"]),
    (348, 349, "ram", "bighorn", ["sheep"]),
    (350, 350, "ibex", "ibex", ["goat"]),
    (351, 353, "hartebeest", "gazelle", ["antelope"]),
    (354, 354, "Arabian camel", "Arabian camel", ["camel"]),
    (356, 364, "weasel", "three-toed sloth", ["animal"]),
    (365, 369, "orangutan", "siamang", ["ape", "monkey"]),
    (370, 382, "guenon", "squirrel monkey", ["monkey"]),
    (383, 384, "Madagascar cat", "indri", ["lemur"]),
    (385, 386, "Indian elephant", "African elephant", ["elephant"]),
    (387, 388, "lesser panda", "giant panda", ["panda"]),
    (389, 397, "barracouta", "puffer", ["fish"]),
    (924, 969, "guacamole", "eggnog", ["food"]),
    (936, 946, "head cabbage", "cardoon", ["vegetable"]),
    (948, 957, "Granny Smith", "pomegranate", ["fruit"]),
    (970, 980, "alp", "volcano", ["landscape"]),
    (981, 983, "ballplayer", "scuba diver", ["person"]),
    (984, 990, "rapeseed", "buckeye", ["plant"]),
    (991, 997, "coral fungus", "bolete", ["mushroom", "fungus"]),
]

# Plain words for single classes, by first name.
EXTRA = {
    "espresso": ["coffee", "drink"], "cup": ["drink"], "eggnog": ["drink"],
    "red wine": ["wine", "drink"], "coffee mug": ["coffee"], "coffeepot": ["coffee"],
    "espresso maker": ["coffee"], "teapot": ["tea"], "wine bottle": ["wine"],
    "beer bottle": ["beer"], "beer glass": ["beer"], "granny smith": ["apple"],
    "alp": ["mountain"], "volcano": ["mountain"], "lakeside": ["lake", "water"],
    "seashore": ["beach", "sea", "water"], "sandbar": ["beach", "sand"], "coral reef": ["sea", "water"],
    "promontory": ["coast", "sea"], "cliff": ["rock"], "ballplayer": ["baseball", "man"],
    "groom": ["wedding", "man"], "scuba diver": ["diver", "water"], "daisy": ["flower"],
    "yellow lady's slipper": ["flower"], "rapeseed": ["flower", "field"], "ear": ["corn"],
    "toilet tissue": ["toilet paper"], "sorrel": ["horse"], "zebra": ["animal"],
    "ox": ["cow"], "hippopotamus": ["animal"], "llama": ["animal"], "tabby": ["cat"],
    "convertible": ["car"], "cab": ["taxi", "car"], "jeep": ["car"], "limousine": ["car"],
    "minivan": ["car", "van"], "model t": ["car"], "racer": ["car"], "beach wagon": ["car"],
    "police van": ["police"], "pickup": ["truck"], "fire engine": ["truck"],
    "tow truck": ["truck"], "trailer truck": ["truck"], "garbage truck": ["truck"],
    "mountain bike": ["bicycle"], "bicycle-built-for-two": ["bicycle"], "tricycle": ["bicycle"],
    "moped": ["scooter"], "motor scooter": ["scooter", "motorcycle"], "cellular telephone": ["phone"],
    "dial telephone": ["phone"], "pay-phone": ["phone"], "laptop": ["computer"],
    "notebook": ["computer"], "desktop computer": ["computer"], "television": ["tv"],
    "swimming trunks": ["swimsuit"], "bikini": ["swimsuit"], "maillot": ["swimsuit"],
    "jersey": ["shirt"], "sweatshirt": ["shirt"], "space shuttle": ["spacecraft", "rocket"],
    "missile": ["rocket"], "projectile": ["rocket"], "speedboat": ["boat"], "canoe": ["boat"],
    "lifeboat": ["boat"], "gondola": ["boat"], "fireboat": ["boat"], "yawl": ["boat"],
    "catamaran": ["boat"], "trimaran": ["boat"], "schooner": ["boat"], "paddle": ["boat"],
    "container ship": ["ship"], "liner": ["ship"], "pirate": ["ship"], "aircraft carrier": ["ship"],
    "airliner": ["airplane"], "warplane": ["airplane"], "passenger car": ["train"],
    "electric locomotive": ["train"], "steam locomotive": ["train"], "bullet train": ["train"],
    "streetcar": ["tram"], "school bus": ["bus"], "trolleybus": ["bus"], "minibus": ["bus"],
    "cowboy hat": ["hat"], "sombrero": ["hat"], "crash helmet": ["helmet"],
    "football helmet": ["helmet"], "ski": ["snow"], "dogsled": ["dog", "sled", "snow"],
    "snowmobile": ["snow"], "bobsled": ["sled", "snow"], "go-kart": ["kart"],
    "volleyball": ["ball"], "basketball": ["ball"], "soccer ball": ["soccer"],
    "rugby ball": ["rugby"], "tennis ball": ["tennis"], "golf ball": ["golf"],
    "plate": ["food"], "pizza": ["food"], "cheeseburger": ["burger"], "hotdog": ["hot dog"],
    "swing": ["playground"], "park bench": ["bench", "park"], "fountain": ["water"],
    "web site": ["website", "screen"], "comic book": ["book"], "book jacket": ["book"],
    "mortarboard": ["graduation"], "academic gown": ["graduation"], "stretcher": [],
    "bathtub": ["bath"], "tub": ["bath"], "shower curtain": ["shower"],
    "bubble": ["bubbles"], "bow tie": ["tie"], "windsor tie": ["tie"], "sunglasses": ["glasses"],
    "sunglass": ["glasses"], "jean": ["jeans"], "miniskirt": ["skirt"], "wig": ["hair"],
    "snorkel": ["water"], "surfboard": ["surfing"], "paddlewheel": ["boat"],
    "lakeshore": ["lake"], "tent": ["camping"], "mountain tent": ["tent", "camping"],
}

tags = [[] for _ in range(1000)]
for a, b, na, nb, group in GROUPS:
    assert first[a] == na, (a, first[a], na)
    assert first[b] == nb, (b, first[b], nb)
    for i in range(a, b + 1):
        tags[i].extend(group)

def plain(s):
    return re.sub(r"\s+", " ", s.lower()).strip()

out = []
for i, name in enumerate(first):
    own = plain(name)
    t = [own]
    if 398 <= i <= 923 and " " in own and not own.startswith("the "):
        t.append(own.split(" ")[-1])
    t.extend(EXTRA.get(own, []))
    t.extend(tags[i])
    seen = []
    for x in t:
        x = plain(x)
        if x and x not in seen:
            seen.append(x)
    out.append(", ".join(seen))

with open("models/imagenet_tags.txt", "w") as f:
    f.write("\n".join(out) + "\n")
print("wrote models/imagenet_tags.txt", file=sys.stderr)
