//! The photo (JPEG) and signature (PNG) on the card: decoded with bounded
//! memory, resampled into their boxes. Anything that does not decode is
//! reported as `None`, and the caller draws a placeholder instead.

use super::canvas::{Canvas, Rgb, mix_rgb};
use std::io::Cursor;

/// Larger sides are refused before decoding: a card needs no more, and a
/// forged header must not make the decoder allocate gigabytes.
const MAX_SIDE: u32 = 4096;
/// Most memory the PNG decoder may allocate.
const MAX_PNG_BYTES: usize = 64 * 1024 * 1024;

/// A decoded image, RGBA, row-major.
pub(crate) struct Picture {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

/// A box on the card.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Area {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Picture {
    fn new(width: u32, height: u32, rgba: Vec<u8>) -> Option<Self> {
        let ok = width > 0
            && height > 0
            && width <= MAX_SIDE
            && height <= MAX_SIDE
            && rgba.len() == width as usize * height as usize * 4;
        ok.then_some(Self {
            width,
            height,
            rgba,
        })
    }

    /// Decodes a baseline or progressive JPEG (greyscale, RGB or CMYK).
    pub(crate) fn from_jpeg(bytes: &[u8]) -> Option<Self> {
        let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
        decoder.read_info().ok()?;
        let info = decoder.info()?;
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return None;
        }
        decoder.set_max_decoding_buffer_size(MAX_SIDE as usize * MAX_SIDE as usize * 4);
        let pixels = decoder.decode().ok()?;
        let rgba: Vec<u8> = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l, 255]).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], 255])
                .collect(),
            jpeg_decoder::PixelFormat::RGB24 => pixels
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            jpeg_decoder::PixelFormat::CMYK32 => pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(255 - p[3]);
                    let channel = |c: u8| ((u16::from(255 - c) * k) / 255) as u8;
                    [channel(p[0]), channel(p[1]), channel(p[2]), 255]
                })
                .collect(),
        };
        Self::new(width, height, rgba)
    }

    /// Decodes a PNG of any colour type, to 8-bit RGBA.
    pub(crate) fn from_png(bytes: &[u8]) -> Option<Self> {
        let mut decoder = png::Decoder::new_with_limits(
            Cursor::new(bytes),
            png::Limits {
                bytes: MAX_PNG_BYTES,
            },
        );
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().ok()?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return None;
        }
        let mut buffer = vec![0; reader.output_buffer_size()?];
        let frame = reader.next_frame(&mut buffer).ok()?;
        if frame.bit_depth != png::BitDepth::Eight {
            return None;
        }
        let rows = buffer
            .chunks_exact(frame.line_size)
            .take(frame.height as usize);
        let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
        for row in rows {
            let row = &row[..frame.width as usize * frame.color_type.samples()];
            match frame.color_type {
                png::ColorType::Grayscale => {
                    rgba.extend(row.iter().flat_map(|&l| [l, l, l, 255]));
                }
                png::ColorType::GrayscaleAlpha => {
                    rgba.extend(row.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]));
                }
                png::ColorType::Rgb => {
                    rgba.extend(row.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]));
                }
                png::ColorType::Rgba => rgba.extend_from_slice(row),
                png::ColorType::Indexed => return None,
            }
        }
        Self::new(frame.width, frame.height, rgba)
    }

    fn pixel(&self, x: u32, y: u32) -> [f32; 4] {
        let i = (y.min(self.height - 1) as usize * self.width as usize
            + x.min(self.width - 1) as usize)
            * 4;
        [
            f32::from(self.rgba[i]),
            f32::from(self.rgba[i + 1]),
            f32::from(self.rgba[i + 2]),
            f32::from(self.rgba[i + 3]),
        ]
    }

    /// The colour over the source rectangle [x0, x1) × [y0, y1): the mean of
    /// the pixels it covers when shrinking, bilinear when enlarging.
    fn sample(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> [f32; 4] {
        if x1 - x0 <= 1.0 && y1 - y0 <= 1.0 {
            let (cx, cy) = (
                ((x0 + x1) / 2.0 - 0.5).max(0.0),
                ((y0 + y1) / 2.0 - 0.5).max(0.0),
            );
            let (ix, iy) = (cx.floor() as u32, cy.floor() as u32);
            let (fx, fy) = (cx - cx.floor(), cy - cy.floor());
            let (a, b) = (self.pixel(ix, iy), self.pixel(ix + 1, iy));
            let (c, d) = (self.pixel(ix, iy + 1), self.pixel(ix + 1, iy + 1));
            let mut out = [0.0; 4];
            for k in 0..4 {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bottom = c[k] + (d[k] - c[k]) * fx;
                out[k] = top + (bottom - top) * fy;
            }
            return out;
        }
        let (sx0, sy0) = (x0.floor().max(0.0) as u32, y0.floor().max(0.0) as u32);
        let sx1 = (x1.ceil() as u32).clamp(sx0 + 1, self.width.max(sx0 + 1));
        let sy1 = (y1.ceil() as u32).clamp(sy0 + 1, self.height.max(sy0 + 1));
        let mut sum = [0.0f32; 4];
        let mut n = 0.0f32;
        for y in sy0..sy1 {
            for x in sx0..sx1 {
                let p = self.pixel(x, y);
                for k in 0..4 {
                    sum[k] += p[k];
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n.max(1.0))
    }

    /// Fills `area` with the picture scaled to cover it, cropped around its
    /// centre (the usual passport-photo framing).
    pub(crate) fn draw_cover(&self, canvas: &mut Canvas, area: Area) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = (w / area.w as f32).min(h / area.h as f32);
        let (ox, oy) = (
            (w - area.w as f32 * scale) / 2.0,
            (h - area.h as f32 * scale) / 2.0,
        );
        for dy in 0..area.h {
            for dx in 0..area.w {
                let x0 = ox + dx as f32 * scale;
                let y0 = oy + dy as f32 * scale;
                let p = self.sample(x0, y0, x0 + scale, y0 + scale);
                let under = canvas.get(area.x + dx, area.y + dy);
                let colour = [p[0] as u8, p[1] as u8, p[2] as u8];
                canvas.put(
                    area.x + dx,
                    area.y + dy,
                    mix_rgb(under, colour, p[3] / 255.0),
                );
            }
        }
    }

    /// Draws the picture as ink: scaled to fit inside `area` (centred), each
    /// pixel inking as much as it is dark and opaque, so a signature on white
    /// or on transparency leaves the card's background showing.
    pub(crate) fn draw_ink(&self, canvas: &mut Canvas, area: Area, ink: Rgb) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = (w / area.w as f32).max(h / area.h as f32);
        let (dw, dh) = ((w / scale).round() as i32, (h / scale).round() as i32);
        let (left, top) = (area.x + (area.w - dw) / 2, area.y + (area.h - dh) / 2);
        for dy in 0..dh {
            for dx in 0..dw {
                let x0 = dx as f32 * scale;
                let y0 = dy as f32 * scale;
                let p = self.sample(x0, y0, x0 + scale, y0 + scale);
                let luma = (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0;
                let coverage = (1.0 - luma) * p[3] / 255.0;
                canvas.blend(left + dx, top + dy, ink, coverage);
            }
        }
    }
}
