//! Reading a user's image file into 8-bit RGB, the way PIL would hand it to torchvision.
//!
//! PNG, JPEG, WebP, BMP, TIFF and GIF (first frame) are decoded by the `image` crate, with the
//! format guessed from the content, not the extension. JPEG pixels come from libjpeg-turbo's
//! decoder (as in Pillow) so that they match the PyTorch pipeline bit for bit; a JPEG without
//! its end-of-image marker is refused as truncated; a PNG whose pixel data are complete but
//! whose end chunk is cut short decodes, with a note ([`load_rgb_noting`]). Grayscale and 16-bit images become
//! 8-bit RGB, alpha is composited on white, and the EXIF orientation is applied. Only regular
//! files are read, and files above [`MAX_FILE_BYTES`] are refused before reading; images below
//! [`MIN_SIDE`] pixels a side or above [`MAX_PIXELS`] are refused before decoding.

use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use std::path::Path;

/// The largest image accepted, in pixels (100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;
/// The smallest side accepted, in pixels.
pub const MIN_SIDE: u32 = 8;

/// The largest image file read, in bytes: enough for [`MAX_PIXELS`] uncompressed at 16 bits
/// per channel with alpha, plus headers. Larger files are refused before reading.
pub const MAX_FILE_BYTES: u64 = MAX_PIXELS * 8 + (1 << 20);

/// Decodes `path` into 8-bit RGB with EXIF orientation applied and alpha over white. Only a
/// regular file of at most [`MAX_FILE_BYTES`] is read (a FIFO, `/dev/zero` or a folder is
/// refused before reading).
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    Ok(load_rgb_noting(path)?.0)
}

/// [`load_rgb`], with what a user should hear about a file that decoded all the same (a PNG
/// whose end chunk is missing or cut short: its pixels are complete, the file is not).
pub fn load_rgb_noting(path: &Path) -> Result<(RgbImage, Vec<String>)> {
    let bytes = crate::files::read_regular(path, MAX_FILE_BYTES, "images")?;
    let img = decode_rgb(&bytes, path)?;
    let mut notes = Vec::new();
    if bytes.starts_with(PNG_SIGNATURE) && !bytes.ends_with(PNG_END) {
        notes.push(
            "the PNG file ends early (its IEND end chunk is missing or cut short); its pixels \
             decoded completely, but the file may be damaged"
                .to_string(),
        );
    }
    Ok((img, notes))
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// The complete IEND chunk every PNG ends with: length 0, type, CRC.
const PNG_END: &[u8] = b"\0\0\0\0IEND\xAE\x42\x60\x82";

/// Decodes an in-memory image; `name` is used in error messages.
pub fn decode_rgb(bytes: &[u8], name: &Path) -> Result<RgbImage> {
    let bad = |reason: String| Error::BadImage {
        path: name.to_path_buf(),
        reason,
    };
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let format = reader.format().ok_or_else(|| {
        bad("unrecognised format (netlens reads PNG, JPEG, WebP, BMP, TIFF and GIF)".into())
    })?;
    let is_jpeg = format == image::ImageFormat::Jpeg;
    if is_jpeg && !has_jpeg_end(bytes) {
        return Err(bad("the JPEG is truncated (no end-of-image marker)".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| bad(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_size(name, w, h)?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| bad(e.to_string()))?;
    if is_jpeg {
        // The image crate validated the file; take libjpeg-turbo's pixels when it agrees on
        // the size (CMYK and other exotic JPEGs keep the image crate's decoding).
        if let Some(exact) =
            libjpeg_rgb(bytes).filter(|e| e.dimensions() == (img.width(), img.height()))
        {
            img = DynamicImage::ImageRgb8(exact);
        }
    }
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb8_over_white(img))
}

/// Whether a JPEG stream has its end-of-image marker (FF D9) near the end of the file.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1 << 16)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes a JPEG with libjpeg-turbo (via mozjpeg), exactly as Pillow does.
fn libjpeg_rgb(bytes: &[u8]) -> Option<RgbImage> {
    let decode = || -> std::io::Result<RgbImage> {
        let d = mozjpeg::Decompress::new_mem(bytes)?;
        let mut rgb = d.rgb()?;
        let (w, h) = (rgb.width() as u32, rgb.height() as u32);
        let px: Vec<[u8; 3]> = rgb.read_scanlines()?;
        rgb.finish()?;
        let flat: Vec<u8> = px.into_iter().flatten().collect();
        RgbImage::from_raw(w, h, flat).ok_or_else(|| std::io::Error::other("short scanlines"))
    };
    std::panic::catch_unwind(decode).ok().and_then(|r| r.ok())
}

fn check_size(path: &Path, w: u32, h: u32) -> Result<()> {
    let size_err = |reason: String| Error::ImageSize {
        path: path.to_path_buf(),
        reason,
    };
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(size_err(format!(
            "image is {w}x{h}; netlens needs at least {MIN_SIDE} pixels on each side"
        )));
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(size_err(format!(
            "image is {w}x{h} ({:.0} megapixels); the limit is {} megapixels",
            (u64::from(w) * u64::from(h)) as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

/// Converts any decoded image to 8-bit RGB; alpha (8 or 16 bit) is composited on white.
fn to_rgb8_over_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(p[0]), over(p[1]), over(p[2])])
    })
}
