//! The localization benchmark's protocol (`netlens locate-bench`), a benchmark that needs no
//! dataset: crops of real photos of known class (a cat, an espresso, a moped) are pasted at
//! known places and scales onto textures and other photos ([`super::scenes`]); each method's
//! map is scored by the pointing game (is its maximum inside the object?) and by the IoU of its
//! best [`locate`] box with the pasted rectangle; a centre guess is the chance baseline.
//!
//! The command keeps only its flags, its table and its figure; everything that decides a
//! number lives here, so the figures are the same from the CLI, a test or the Python package.

use super::locate::{self, BoundingBox, LocateOptions};
use super::metrics::{iou, pointing_hit, Tally};
use super::scenes::{self, Background, Layout, Object, Scene};
use super::{Attribution, Map, Run, Targets};
use crate::batch::ImageBatch;
use crate::classify::classify;
use crate::error::Result;
use crate::imaging::decode::decode_rgb;
use crate::imaging::{self, Placement};
use crate::Classifier;
use image::RgbImage;
use std::path::Path;

/// A built-in object: a photo, the object's rectangle in it and its ImageNet class.
struct Builtin {
    name: &'static str,
    photo: &'static [u8],
    /// (x0, y0, x1, y1) in the photo's pixels.
    rect: (u32, u32, u32, u32),
    class: usize,
}

/// The pasted objects.
const OBJECTS: [Builtin; 3] = [
    Builtin {
        name: "cat",
        photo: include_bytes!("../../../../assets/photos/chelsea.png"),
        rect: (0, 0, 400, 300),
        class: 285, // Egyptian cat
    },
    Builtin {
        name: "espresso",
        photo: include_bytes!("../../../../assets/photos/coffee.png"),
        rect: (75, 15, 480, 390),
        class: 967, // espresso
    },
    Builtin {
        name: "moped",
        photo: include_bytes!("../../../../assets/photos/motorcycle_left.png"),
        rect: (100, 55, 690, 445),
        class: 665, // moped
    },
];

/// Default backgrounds: three grey textures and two photos without any of the objects.
const BACKGROUNDS: [(&str, &[u8]); 5] = [
    (
        "grass",
        include_bytes!("../../../../assets/textures/grass.png"),
    ),
    (
        "brick",
        include_bytes!("../../../../assets/textures/brick.png"),
    ),
    (
        "gravel",
        include_bytes!("../../../../assets/textures/gravel.png"),
    ),
    (
        "rocket",
        include_bytes!("../../../../assets/photos/rocket.jpg"),
    ),
    (
        "grace_hopper",
        include_bytes!("../../../../assets/photos/grace_hopper.jpg"),
    ),
];

/// The built-in objects, cropped from their photos.
pub fn builtin_objects() -> Result<Vec<Object>> {
    OBJECTS
        .iter()
        .map(|b| {
            let img = decode_rgb(b.photo, Path::new(b.name))?;
            let (x0, y0, x1, y1) = b.rect;
            let crop = image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image();
            Ok(Object {
                name: b.name.to_string(),
                image: crop,
                class: b.class,
            })
        })
        .collect()
}

/// The built-in backgrounds (textures and photos without any of the objects).
pub fn builtin_backgrounds() -> Result<Vec<Background>> {
    BACKGROUNDS
        .iter()
        .map(|(name, bytes)| {
            Ok(Background {
                name: name.to_string(),
                image: decode_rgb(bytes, Path::new(name))?,
            })
        })
        .collect()
}

/// The scenes, fitted to a model's input, with their classes and true boxes.
pub struct Bench {
    pub scenes: Vec<Scene>,
    /// Each scene fitted to the model's input, and where the input sits in the scene.
    pub fitted: Vec<(RgbImage, Placement)>,
    /// How many scenes have the pasted object's class in the model's top 5.
    pub recognized_top5: usize,
}

impl Bench {
    /// Pastes every object on every background at the layout's scales and positions and fits
    /// the scenes to `model`'s input.
    pub fn new(
        model: &dyn Classifier,
        objects: &[Object],
        backgrounds: &[Background],
        layout: &Layout,
        batch_size: usize,
    ) -> Result<Self> {
        let scenes = scenes::scenes(objects, backgrounds, layout)?;
        let spec = model.spec();
        let fitted: Vec<(RgbImage, Placement)> = scenes
            .iter()
            .map(|s| imaging::fit_with(&s.image, spec.resize, spec.input_size))
            .collect();
        let inputs: Vec<RgbImage> = fitted.iter().map(|f| f.0.clone()).collect();
        let preds = classify(model, &inputs, 5, batch_size.max(1));
        let recognized_top5 = preds
            .iter()
            .zip(&scenes)
            .filter(|(p, s)| p.top.iter().any(|t| t.0 == s.class))
            .count();
        Ok(Self {
            scenes,
            fitted,
            recognized_top5,
        })
    }

    /// The scenes' classes, in order.
    pub fn classes(&self) -> Vec<usize> {
        self.scenes.iter().map(|s| s.class).collect()
    }

    /// The pasted rectangles, in scene pixels.
    pub fn truths(&self) -> Vec<BoundingBox> {
        self.scenes.iter().map(|s| s.truth).collect()
    }

    /// Number of image passes [`Bench::score`] makes for `method` (for a progress bar).
    pub fn passes(&self, method: &dyn Attribution) -> usize {
        method.passes(self.scenes.len())
    }

    /// `method`'s maps of every scene's object class, scored by the pointing game (a maximum
    /// within `tolerance` scene pixels of the object counts) and by the IoU of the best box.
    pub fn score(
        &self,
        model: &dyn Classifier,
        method: &dyn Attribution,
        boxes: &LocateOptions,
        tolerance: f64,
        run: &mut Run,
    ) -> Result<Scored> {
        let inputs: Vec<RgbImage> = self.fitted.iter().map(|f| f.0.clone()).collect();
        let x = ImageBatch::from_images(&inputs, &model.spec().normalization)?;
        let maps = method.attribute(model, x.view(), &Targets::PerImage(self.classes()), run)?;
        let mut tally = Tally::default();
        let mut best = Vec::with_capacity(maps.len());
        for ((map, (_, placement)), scene) in maps.iter().zip(&self.fitted).zip(&self.scenes) {
            let hit = pointing_hit(map, placement, &scene.truth, tolerance);
            let b = locate::boxes(map, boxes)?
                .first()
                .map(|b| b.to_original(placement));
            tally.add(hit, b.map(|b| iou(&b, &scene.truth)).unwrap_or(0.0));
            best.push(b);
        }
        Ok(Scored {
            name: method.name(),
            tally,
            maps,
            best,
        })
    }

    /// The baseline that ignores the image: it points at the centre and boxes the central
    /// half of the scene.
    pub fn centre_baseline(&self, size: u32, tolerance: f64) -> Tally {
        let s = f64::from(size);
        let guess = BoundingBox {
            x0: s / 4.0,
            y0: s / 4.0,
            x1: 3.0 * s / 4.0,
            y1: 3.0 * s / 4.0,
            score: 1.0,
        };
        let mut t = Tally::default();
        for scene in &self.scenes {
            t.add(
                scene.truth.contains(s / 2.0, s / 2.0, tolerance),
                iou(&guess, &scene.truth),
            );
        }
        t
    }
}

/// One method's results on every scene.
pub struct Scored {
    pub name: String,
    pub tally: Tally,
    /// The map of each scene's model input.
    pub maps: Vec<Map>,
    /// The best box of each scene, in scene pixels (none when the map is flat).
    pub best: Vec<Option<BoundingBox>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_assets_decode_and_objects_are_imagenet_classes() {
        let objs = builtin_objects().expect("objects");
        assert_eq!(objs.len(), 3);
        assert!(objs.iter().all(|o| o.class < 1000 && o.image.width() > 100));
        let bgs = builtin_backgrounds().expect("backgrounds");
        assert_eq!(bgs.len(), 5);
    }
}
