//! The figure of the cascading randomization test of Adebayo et al. (2018) on the first image
//! (`randomization.png`): a row per method, a column per step (the trained network, then the
//! top 1, 25 %, 50 %, 75 % and all of the learned layers re-drawn, from the logits down), each
//! map captioned with its Spearman rank correlation of absolute maps with the trained
//! network's. The numbers are the library's ([`netlens::evaluate::cascade`]).

use crate::commands::saliency::map_picture;
use netlens::evaluate::RandomizationTests;
use netlens::imaging::figure::{Cell, Figure};
use netlens::metrics::randomization::Randomization;

/// The cascade's figure for `t`, computed on `image` (the first image, at the input size).
pub fn figure(
    t: &RandomizationTests,
    spec: &netlens::ModelSpec,
    image: &image::RgbImage,
) -> image::RgbImage {
    let total = t.layers;
    let mut fig = Figure::new(160).title(format!(
        "{}: cascading randomization (Adebayo et al. 2018), learned layers re-drawn from the \
         logits down; ρ = Spearman of |map| with the trained network's",
        spec.name
    ));
    let blank = || image::RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let mut head = vec![Cell::new(image.clone(), "photo")];
    for step in &t.steps {
        let Randomization::Cascade(k) = *step else {
            continue;
        };
        let label = match k {
            0 => "trained".to_string(),
            k if k == total => format!("all {total} layers"),
            k => format!("top {k} of {total}"),
        };
        head.push(Cell::new(blank(), &label));
    }
    fig.row(None, head);
    for (mi, maps) in t.cascade_maps.iter().enumerate() {
        let mut row = vec![Cell::new(blank(), "")];
        row.extend(
            maps.iter()
                .zip(t.cascade_spearman(mi))
                .map(|(m, rho)| Cell::new(map_picture(m), &format!("ρ = {rho:.2}"))),
        );
        let name = t.results.get(mi).map_or("", |r| r.method.as_str());
        fig.row(Some(name.to_string()), row);
    }
    fig.render()
}
