//! Text on the card: the embedded DejaVu Sans faces (see
//! `assets/LICENSE-DejaVu.txt`), measured and rasterised with `ab_glyph`,
//! and cut with an ellipsis where a value does not fit its box.

use super::RenderError;
use super::canvas::{Canvas, Rgb};
use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};

const REGULAR: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/DejaVuSans-Bold.ttf");

/// Appended to text cut short to fit its box.
pub(crate) const ELLIPSIS: char = '…';

/// Regular or bold face.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

/// How a piece of text is set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    pub weight: Weight,
    /// Pixel height of the face (ascent to descent).
    pub size: f32,
    pub colour: Rgb,
}

/// Where a line of text sits relative to its anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// The anchor is the left edge.
    Left,
    /// The anchor is the centre.
    Centre,
    /// The anchor is the right edge.
    Right,
}

/// The two embedded faces.
pub(crate) struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl Fonts {
    /// Parses the embedded fonts (cheap: tables are read lazily).
    pub(crate) fn load() -> Result<Self, RenderError> {
        let parse = |name: &str, bytes: &'static [u8]| {
            FontRef::try_from_slice(bytes).map_err(|e| RenderError::Font(format!("{name}: {e}")))
        };
        Ok(Self {
            regular: parse("DejaVuSans", REGULAR)?,
            bold: parse("DejaVuSans-Bold", BOLD)?,
        })
    }

    fn face(&self, weight: Weight) -> &FontRef<'static> {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// Advance of each character of `text`, kerning with its predecessor included.
    fn advances(&self, text: &str, style: Style) -> Vec<(char, f32)> {
        let font = self.face(style.weight).as_scaled(PxScale::from(style.size));
        let mut previous: Option<GlyphId> = None;
        text.chars()
            .map(|c| {
                let id = font.glyph_id(c);
                let kern = previous.map_or(0.0, |p| font.kern(p, id));
                previous = Some(id);
                (c, kern + font.h_advance(id))
            })
            .collect()
    }

    /// Width of `text` set in `style`, in pixels.
    pub(crate) fn width(&self, text: &str, style: Style) -> f32 {
        self.advances(text, style).iter().map(|(_, a)| a).sum()
    }

    /// `text` unchanged if it fits in `max_width`, else its longest prefix
    /// that fits with an ellipsis after it (trailing spaces dropped); just the
    /// ellipsis, or nothing, when even that is too wide.
    pub(crate) fn fit(&self, text: &str, style: Style, max_width: f32) -> String {
        let advances = self.advances(text, style);
        let total: f32 = advances.iter().map(|(_, a)| a).sum();
        if total <= max_width {
            return text.to_owned();
        }
        let ellipsis = self.width(&ELLIPSIS.to_string(), style);
        let mut keep = 0usize;
        let mut used = 0.0f32;
        for (_, advance) in &advances {
            if used + advance + ellipsis > max_width {
                break;
            }
            used += advance;
            keep += 1;
        }
        let mut cut: String = advances[..keep].iter().map(|(c, _)| *c).collect();
        // Kerning against the ellipsis may add a little: back off until it fits.
        loop {
            let trimmed = cut.trim_end().len();
            cut.truncate(trimmed);
            let candidate = format!("{cut}{ELLIPSIS}");
            if cut.is_empty() {
                return if ellipsis <= max_width {
                    candidate
                } else {
                    String::new()
                };
            }
            if self.width(&candidate, style) <= max_width {
                return candidate;
            }
            cut.pop();
        }
    }

    /// Draws one line of `text` with the top of its line box at `top`,
    /// anchored at `x` as `align` says, cut to `max_width`. Returns the
    /// width drawn.
    pub(crate) fn draw(
        &self,
        canvas: &mut Canvas,
        text: &str,
        style: Style,
        (x, top): (f32, f32),
        align: Align,
        max_width: f32,
    ) -> f32 {
        let text = self.fit(text, style, max_width);
        let width = self.width(&text, style);
        let left = match align {
            Align::Left => x,
            Align::Centre => x - width / 2.0,
            Align::Right => x - width,
        };
        let face = self.face(style.weight);
        let font = face.as_scaled(PxScale::from(style.size));
        let baseline = (top + font.ascent()).round();
        let mut caret = left;
        let mut previous: Option<GlyphId> = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(style.size, point(caret, baseline));
            caret += font.h_advance(id);
            let Some(outline) = face.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (ox, oy) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|gx, gy, coverage| {
                canvas.blend(ox + gx as i32, oy + gy as i32, style.colour, coverage);
            });
        }
        width
    }
}
