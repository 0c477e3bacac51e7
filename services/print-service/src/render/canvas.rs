//! An RGB pixel buffer with the few drawing operations a card needs:
//! rectangles, alpha blending and PNG encoding. Coordinates outside the
//! canvas are clipped, never an error.

use super::RenderError;

/// An 8-bit RGB colour.
pub(crate) type Rgb = [u8; 3];

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Clone)]
pub(crate) struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas of `width` × `height` filled with `fill`.
    pub(crate) fn new(width: u32, height: u32, fill: Rgb) -> Self {
        let len = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(len * 3);
        for _ in 0..len {
            pixels.extend_from_slice(&fill);
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    pub(crate) fn height(&self) -> u32 {
        self.height
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
        (x < self.width && y < self.height)
            .then(|| (y as usize * self.width as usize + x as usize) * 3)
    }

    /// The colour at (x, y); black outside the canvas.
    pub(crate) fn get(&self, x: i32, y: i32) -> Rgb {
        match self.index(x, y) {
            Some(i) => [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]],
            None => [0, 0, 0],
        }
    }

    /// Sets (x, y) to `colour`.
    pub(crate) fn put(&mut self, x: i32, y: i32, colour: Rgb) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Mixes `colour` into (x, y) with opacity `alpha` (0–1).
    pub(crate) fn blend(&mut self, x: i32, y: i32, colour: Rgb, alpha: f32) {
        let alpha = alpha.clamp(0.0, 1.0);
        if alpha <= 0.0 {
            return;
        }
        if let Some(i) = self.index(x, y) {
            for (c, target) in self.pixels[i..i + 3].iter_mut().zip(colour) {
                *c = mix(*c, target, alpha);
            }
        }
    }

    /// Fills the rectangle at (x, y) of `w` × `h`.
    pub(crate) fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, colour: Rgb) {
        for yy in y..y.saturating_add(h) {
            for xx in x..x.saturating_add(w) {
                self.put(xx, yy, colour);
            }
        }
    }

    /// Draws the outline of the rectangle at (x, y) of `w` × `h`,
    /// `thickness` pixels wide, inside the rectangle.
    pub(crate) fn stroke_rect(
        &mut self,
        x: i32,
        y: i32,
        w: i32,
        h: i32,
        thickness: i32,
        colour: Rgb,
    ) {
        self.fill_rect(x, y, w, thickness, colour);
        self.fill_rect(x, y + h - thickness, w, thickness, colour);
        self.fill_rect(x, y, thickness, h, colour);
        self.fill_rect(x + w - thickness, y, thickness, h, colour);
    }

    /// Calls `paint(x, y, current)` for every pixel and stores its answer.
    pub(crate) fn shade(&mut self, mut paint: impl FnMut(u32, u32, Rgb) -> Rgb) {
        let width = self.width as usize;
        for (i, px) in self.pixels.chunks_exact_mut(3).enumerate() {
            let (x, y) = ((i % width) as u32, (i / width) as u32);
            let out = paint(x, y, [px[0], px[1], px[2]]);
            px.copy_from_slice(&out);
        }
    }

    /// The canvas as an 8-bit RGB PNG. The encoder settings are fixed, so
    /// the same pixels always give the same bytes.
    pub(crate) fn encode_png(&self) -> Result<Vec<u8>, RenderError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder
            .write_header()
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        Ok(out)
    }
}

/// `from` moved towards `to` by `t` (0–1), rounded.
pub(crate) fn mix(from: u8, to: u8, t: f32) -> u8 {
    let v = f32::from(from) + (f32::from(to) - f32::from(from)) * t;
    v.round().clamp(0.0, 255.0) as u8
}

/// Component-wise [`mix`] of two colours.
pub(crate) fn mix_rgb(from: Rgb, to: Rgb, t: f32) -> Rgb {
    [
        mix(from[0], to[0], t),
        mix(from[1], to[1], t),
        mix(from[2], to[2], t),
    ]
}
