//! Photo ingest: a camera photo becomes a display copy and a thumbnail, upright, stripped of all
//! metadata, and stored under its sha256.
//!
//! [`ingest`] reads a JPEG, PNG or WebP file once and writes two plain JFIF JPEGs into a store
//! directory, each at `<store>/<first two hex digits>/<sha256>.jpg`:
//!
//! - the display copy, longest edge [`DISPLAY_EDGE`] (never upscaled), quality
//!   [`DISPLAY_QUALITY`];
//! - the thumbnail, longest edge [`THUMBNAIL_EDGE`], made from the display pixels, quality
//!   [`THUMBNAIL_QUALITY`].
//!
//! The EXIF orientation is applied to the pixels; the outputs are encoded from raw pixels, so they
//! carry no EXIF (no GPS, no device serial, no maker notes), no ICC profile, no XMP and no
//! comments. Only the time the photo was taken (`DateTimeOriginal`) is kept, as a value.
//!
//! Hostile input is refused before it costs memory: the file size is checked before the file is
//! read, and the pixel count declared in the image header before any pixel is decoded (a tiny file
//! declaring huge dimensions is a decompression bomb). A refused file writes nothing.
//!
//! JPEGs are decoded with DCT scaling (1/2, 1/4 or 1/8 of the full size, the smallest that still
//! covers the display size), so a 12-megapixel photo never exists in memory at full size.
//!
//! ```
//! use fieldlog_core::photo::{self, Limits};
//! let dir = tempfile::tempdir().unwrap();
//! let source = dir.path().join("photo.png");
//! image::RgbImage::from_pixel(2000, 1000, image::Rgb([200, 120, 40])).save(&source).unwrap();
//! let store = dir.path().join("photos");
//! let photo = photo::ingest(&source, &store, &Limits::default()).unwrap();
//! assert_eq!((photo.display.width, photo.display.height), (1600, 800));
//! assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 160));
//! assert!(photo::stored_path(&store, &photo.display.sha256).is_file());
//! ```

use fast_image_resize::{self as fr, PixelType, ResizeAlg, ResizeOptions, Resizer};
use fieldlog_domain::Lang;
use image::{DynamicImage, RgbImage, metadata::Orientation};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Longest edge of the display copy, in pixels.
pub const DISPLAY_EDGE: u32 = 1600;
/// Longest edge of the thumbnail, in pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// JPEG quality of the display copy.
pub const DISPLAY_QUALITY: u8 = 82;
/// JPEG quality of the thumbnail.
pub const THUMBNAIL_QUALITY: u8 = 75;

/// What a source photo may be at most. Anything bigger is refused before it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// File size in bytes (default 50 MiB).
    pub max_file_bytes: u64,
    /// Width × height as declared in the image header (default 100 megapixels).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
        }
    }
}

/// One stored JPEG: `<store>/<sha256[..2]>/<sha256>.jpg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    /// File size in bytes.
    pub bytes: u64,
}

/// The result of [`ingest`]: both stored copies and what was learnt from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedPhoto {
    pub display: StoredImage,
    pub thumbnail: StoredImage,
    /// EXIF `DateTimeOriginal` as `YYYY-MM-DDTHH:MM:SS` (camera local time, no zone).
    pub taken_at: Option<String>,
    /// The source's dimensions as stored in the file (before the orientation is applied).
    pub source_width: u32,
    pub source_height: u32,
    /// The source's file extension by content: `jpg`, `png` or `webp`.
    pub source_extension: &'static str,
}

/// Why a photo could not be ingested. Nothing is written to the store in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is {bytes} bytes; a photo may be at most {max} bytes")]
    FileTooLarge { path: PathBuf, bytes: u64, max: u64 },
    #[error("{path} declares {width}×{height} pixels; a photo may have at most {max} pixels")]
    TooManyPixels {
        path: PathBuf,
        width: u64,
        height: u64,
        max: u64,
    },
    #[error("{path} is not a JPEG, PNG or WebP image")]
    NotAnImage { path: PathBuf },
    #[error("{path} is a damaged or truncated {format} image: {source}")]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path} could not be re-encoded: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PhotoError {
    /// A stable key for the kind of error, for the UI and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            PhotoError::Io { .. } => "io",
            PhotoError::FileTooLarge { .. } => "photo_file_too_large",
            PhotoError::TooManyPixels { .. } => "photo_too_many_pixels",
            PhotoError::NotAnImage { .. } => "photo_not_an_image",
            PhotoError::Corrupt { .. } => "photo_corrupt",
            PhotoError::Encode { .. } => "photo_encode",
        }
    }

    /// The message in the user's language.
    pub fn message(&self, lang: Lang) -> String {
        const MIB: u64 = 1024 * 1024;
        match (self, lang) {
            (PhotoError::Io { path, source }, Lang::ZhCn) => {
                format!("{}：{source}", path.display())
            }
            (PhotoError::FileTooLarge { path, bytes, max }, Lang::ZhCn) => format!(
                "照片 {} 太大（{} MB），最大 {} MB",
                path.display(),
                bytes.div_ceil(MIB),
                max / MIB
            ),
            (
                PhotoError::TooManyPixels {
                    path,
                    width,
                    height,
                    max,
                },
                Lang::ZhCn,
            ) => format!(
                "照片 {} 的尺寸太大（{width}×{height}），最多 {} 万像素",
                path.display(),
                max / 10_000
            ),
            (PhotoError::NotAnImage { path }, Lang::ZhCn) => {
                format!("{} 不是照片（支持 JPEG、PNG、WebP）", path.display())
            }
            (PhotoError::Corrupt { path, .. }, Lang::ZhCn) => {
                format!("照片 {} 已损坏或不完整，无法读取", path.display())
            }
            (PhotoError::Encode { path, .. }, Lang::ZhCn) => {
                format!("照片 {} 无法转换", path.display())
            }
            (_, Lang::En) => self.to_string(),
        }
    }
}

/// Lower-case hex sha256 of `bytes`: the name of a stored image.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Writes `bytes` to `path` through a synced temporary file beside it, so the file is either
/// absent or whole, never partly written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".write-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where a stored image with this sha256 lives under `store_dir`.
pub fn stored_path(store_dir: &Path, sha256: &str) -> PathBuf {
    let prefix = sha256.get(..2).unwrap_or("00");
    store_dir.join(prefix).join(format!("{sha256}.jpg"))
}

/// Reads a photo, makes its display copy and thumbnail, and stores both under their sha256.
///
/// Ingesting the same photo twice stores each file once and returns the same hashes. On error,
/// nothing is written.
#[tracing::instrument(skip_all, err, fields(source = %source.display()))]
pub fn ingest(
    source: &Path,
    store_dir: &Path,
    limits: &Limits,
) -> Result<IngestedPhoto, PhotoError> {
    let data = read_limited(source, limits)?;
    let format = Format::sniff(&data).ok_or_else(|| PhotoError::NotAnImage {
        path: source.to_owned(),
    })?;
    let decoded = match format {
        Format::Jpeg => decode_jpeg(&data, source, limits)?,
        Format::Png | Format::WebP => decode_other(&data, format, source, limits)?,
    };
    let exif = read_exif(&data);

    let mut resizer = Resizer::new();
    let (width, height) = fit(
        decoded.pixels.width(),
        decoded.pixels.height(),
        DISPLAY_EDGE,
    );
    let display = resize(&mut resizer, decoded.pixels, width, height, source)?;
    let mut display = DynamicImage::ImageRgb8(display);
    display.apply_orientation(exif.orientation);
    // Still RGB8, so this moves the buffer out without converting.
    let display = display.into_rgb8();
    let (width, height) = fit(display.width(), display.height(), THUMBNAIL_EDGE);
    let thumbnail = resize(&mut resizer, display.clone(), width, height, source)?;

    let display_jpeg = encode(&display, DISPLAY_QUALITY, source)?;
    let thumbnail_jpeg = encode(&thumbnail, THUMBNAIL_QUALITY, source)?;
    let display = store(store_dir, &display_jpeg, &display)?;
    let thumbnail = store(store_dir, &thumbnail_jpeg, &thumbnail)?;
    Ok(IngestedPhoto {
        display,
        thumbnail,
        taken_at: exif.taken_at,
        source_width: decoded.source_width,
        source_height: decoded.source_height,
        source_extension: format.extension(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    WebP,
}

impl Format {
    /// By content, never by file name.
    fn sniff(data: &[u8]) -> Option<Format> {
        if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else {
            None
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::WebP => "WebP",
        }
    }
}

/// The whole file, after checking its size on disk (and again while reading, should it grow).
fn read_limited(path: &Path, limits: &Limits) -> Result<Vec<u8>, PhotoError> {
    let io_error = |source| PhotoError::Io {
        path: path.to_owned(),
        source,
    };
    let too_large = |bytes| PhotoError::FileTooLarge {
        path: path.to_owned(),
        bytes,
        max: limits.max_file_bytes,
    };
    let file = File::open(path).map_err(io_error)?;
    let bytes = file.metadata().map_err(io_error)?.len();
    if bytes > limits.max_file_bytes {
        return Err(too_large(bytes));
    }
    let mut data = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_error)?;
    if data.len() as u64 > limits.max_file_bytes {
        return Err(too_large(data.len() as u64));
    }
    Ok(data)
}

fn check_pixels(path: &Path, width: u32, height: u32, limits: &Limits) -> Result<(), PhotoError> {
    let (width, height) = (u64::from(width), u64::from(height));
    if width * height > limits.max_pixels {
        return Err(PhotoError::TooManyPixels {
            path: path.to_owned(),
            width,
            height,
            max: limits.max_pixels,
        });
    }
    Ok(())
}

fn corrupt(
    path: &Path,
    format: Format,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> PhotoError {
    move |source| PhotoError::Corrupt {
        path: path.to_owned(),
        format: format.name(),
        source,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the image has no pixels")]
struct Empty;

/// Every 8×8 block of a JPEG codes its DC coefficient in at least one bit, so a whole JPEG
/// has at least one byte per this many pixels. A file with fewer bytes is truncated, and
/// decoding it would fill the missing blocks one by one (seconds of work for a few bytes).
const JPEG_MAX_PIXELS_PER_BYTE: u64 = 8 * 64;

#[derive(Debug, thiserror::Error)]
#[error("{bytes} bytes cannot hold the {pixels} pixels the header declares")]
struct TooShort {
    bytes: u64,
    pixels: u64,
}

struct Decoded {
    /// RGB pixels, possibly already scaled down (JPEG DCT scaling).
    pixels: RgbImage,
    source_width: u32,
    source_height: u32,
}

fn decode_jpeg(data: &[u8], path: &Path, limits: &Limits) -> Result<Decoded, PhotoError> {
    let corrupt = |e: jpeg_decoder::Error| corrupt(path, Format::Jpeg)(Box::new(e));
    let mut decoder = jpeg_decoder::Decoder::new(data);
    // Reads the headers up to the frame: the declared size, before any pixel is decoded.
    decoder.read_info().map_err(corrupt)?;
    let info = decoder
        .info()
        .ok_or_else(|| corrupt_empty(path, Format::Jpeg))?;
    let (source_width, source_height) = (u32::from(info.width), u32::from(info.height));
    if source_width == 0 || source_height == 0 {
        return Err(corrupt_empty(path, Format::Jpeg));
    }
    check_pixels(path, source_width, source_height, limits)?;
    let (bytes, pixels) = (
        data.len() as u64,
        u64::from(source_width) * u64::from(source_height),
    );
    if pixels > bytes.saturating_mul(JPEG_MAX_PIXELS_PER_BYTE) {
        return Err(self::corrupt(path, Format::Jpeg)(Box::new(TooShort {
            bytes,
            pixels,
        })));
    }
    decoder.set_max_decoding_buffer_size(decoding_budget(limits));
    let (want_width, want_height) = fit(source_width, source_height, DISPLAY_EDGE);
    if (want_width, want_height) != (source_width, source_height) {
        // Both fit in u16: they are no larger than the source's, which JPEG stores as u16.
        let request = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
        decoder
            .scale(request(want_width), request(want_height))
            .map_err(corrupt)?;
    }
    let raw = decoder.decode().map_err(corrupt)?;
    let info = decoder
        .info()
        .ok_or_else(|| corrupt_empty(path, Format::Jpeg))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => raw,
        jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => raw
            .chunks_exact(2)
            .flat_map(|l| [l[0], l[0], l[0]])
            .collect(),
        // jpeg-decoder hands CMYK out as stored; Adobe's (the common case) is inverted.
        jpeg_decoder::PixelFormat::CMYK32 => raw
            .chunks_exact(4)
            .flat_map(|p| {
                let k = u16::from(p[3]);
                p[..3].iter().map(move |&c| (u16::from(c) * k / 255) as u8)
            })
            .collect(),
    };
    let pixels =
        RgbImage::from_raw(width, height, rgb).ok_or_else(|| corrupt_empty(path, Format::Jpeg))?;
    Ok(Decoded {
        pixels,
        source_width,
        source_height,
    })
}

fn decode_other(
    data: &[u8],
    format: Format,
    path: &Path,
    limits: &Limits,
) -> Result<Decoded, PhotoError> {
    let corrupt = |e: image::ImageError| corrupt(path, format)(Box::new(e));
    let image_format = match format {
        Format::Png => image::ImageFormat::Png,
        _ => image::ImageFormat::WebP,
    };
    let reader = || image::ImageReader::with_format(io::Cursor::new(data), image_format);
    // The header alone first: refuse a bomb before allocating for it.
    let (source_width, source_height) = reader().into_dimensions().map_err(corrupt)?;
    if source_width == 0 || source_height == 0 {
        return Err(corrupt_empty(path, format));
    }
    check_pixels(path, source_width, source_height, limits)?;
    let mut reader = reader();
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(decoding_budget(limits) as u64);
    reader.limits(decoder_limits);
    let decoded = reader.decode().map_err(corrupt)?;
    let pixels = if decoded.color().has_alpha() {
        over_white(&decoded.into_rgba8())
    } else {
        decoded.into_rgb8()
    };
    Ok(Decoded {
        pixels,
        source_width,
        source_height,
    })
}

/// Transparent pixels shown as on a white page (a JPEG has no transparency), not as whatever
/// colour they happen to store, which is often black.
fn over_white(rgba: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend = |c: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

fn corrupt_empty(path: &Path, format: Format) -> PhotoError {
    corrupt(path, format)(Box::new(Empty))
}

/// The most a decoder may allocate: the largest allowed image at 4 bytes per pixel, plus slack.
fn decoding_budget(limits: &Limits) -> usize {
    usize::try_from(limits.max_pixels.saturating_mul(4).saturating_add(1 << 20))
        .unwrap_or(usize::MAX)
}

struct Exif {
    orientation: Orientation,
    taken_at: Option<String>,
}

/// Orientation and capture time. Missing or unreadable EXIF is no reason to refuse a photo.
fn read_exif(data: &[u8]) -> Exif {
    let none = Exif {
        orientation: Orientation::NoTransforms,
        taken_at: None,
    };
    let Ok(exif) = exif::Reader::new().read_from_container(&mut io::Cursor::new(data)) else {
        return none;
    };
    let orientation = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    let taken_at = exif
        .get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY)
        .and_then(|f| match &f.value {
            exif::Value::Ascii(parts) => parts.first(),
            _ => None,
        })
        .and_then(|ascii| exif::DateTime::from_ascii(ascii).ok())
        .filter(|t| (1..=12).contains(&t.month) && (1..=31).contains(&t.day) && t.hour < 24)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        });
    Exif {
        orientation,
        taken_at,
    }
}

/// The size with the longest edge at most `edge`, aspect kept, never upscaled.
fn fit(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= edge {
        return (width, height);
    }
    let scale = |n: u32| {
        let scaled = (u64::from(n) * u64::from(edge) + u64::from(longest) / 2) / u64::from(longest);
        (scaled as u32).max(1)
    };
    (scale(width), scale(height))
}

fn resize(
    resizer: &mut Resizer,
    pixels: RgbImage,
    width: u32,
    height: u32,
    path: &Path,
) -> Result<RgbImage, PhotoError> {
    if (pixels.width(), pixels.height()) == (width, height) {
        return Ok(pixels);
    }
    let encode_error = |source: Box<dyn std::error::Error + Send + Sync>| PhotoError::Encode {
        path: path.to_owned(),
        source,
    };
    let (src_width, src_height) = pixels.dimensions();
    let src =
        fr::images::Image::from_vec_u8(src_width, src_height, pixels.into_raw(), PixelType::U8x3)
            .map_err(|e| encode_error(Box::new(e)))?;
    let mut dst = fr::images::Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| encode_error(Box::new(e)))?;
    RgbImage::from_raw(width, height, dst.into_vec()).ok_or_else(|| encode_error(Box::new(Empty)))
}

/// A baseline JFIF JPEG from raw pixels: no EXIF, ICC, XMP or comment segment.
fn encode(pixels: &RgbImage, quality: u8, path: &Path) -> Result<Vec<u8>, PhotoError> {
    let encode_error = |source: Box<dyn std::error::Error + Send + Sync>| PhotoError::Encode {
        path: path.to_owned(),
        source,
    };
    let (Ok(width), Ok(height)) = (
        u16::try_from(pixels.width()),
        u16::try_from(pixels.height()),
    ) else {
        return Err(encode_error(Box::new(Empty)));
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| encode_error(Box::new(e)))?;
    Ok(out)
}

/// Writes `jpeg` under its sha256 unless it is already there: temp file, fsync, rename.
fn store(store_dir: &Path, jpeg: &[u8], pixels: &RgbImage) -> Result<StoredImage, PhotoError> {
    let sha256 = sha256_hex(jpeg);
    let path = stored_path(store_dir, &sha256);
    if !path.is_file() {
        write_atomically(&path, jpeg).map_err(|source| PhotoError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(StoredImage {
        sha256,
        width: pixels.width(),
        height: pixels.height(),
        bytes: jpeg.len() as u64,
    })
}
