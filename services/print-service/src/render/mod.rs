//! Rendering the front of an e-KTP card as a PNG: CR80 at 300 dpi
//! (1012 × 638 px), RGB, on the card's light-blue background, with the
//! header (province, regency), the NIK, the labelled fields in Indonesian,
//! the photo, the place and date of issue, the signature and the serial.
//!
//! Pure and deterministic: the same [`CardFace`] always gives the same
//! bytes. A photo or signature that does not decode is drawn as a
//! placeholder rather than failing the card.

mod canvas;
mod labels;
mod picture;
mod text;

use canvas::{Canvas, Rgb, mix_rgb};
use ektp_proto::v1 as pb;
use picture::{Area, Picture};
use std::sync::OnceLock;
use text::{Align, Fonts, Style, Weight};

/// Card width in pixels (CR80, 85.6 mm at 300 dpi).
pub const CARD_WIDTH: u32 = 1012;
/// Card height in pixels (CR80, 53.98 mm at 300 dpi).
pub const CARD_HEIGHT: u32 = 638;

/// Rendering failed; only the embedded fonts or the encoder can cause it.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("embedded font unreadable: {0}")]
    Font(String),
    #[error("png encoding failed: {0}")]
    Encode(String),
}

/// What the front of an e-KTP shows, as printed (values already in the
/// card's words and upper case).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardFace {
    /// First header line, `PROVINSI {PROVINCE}`.
    pub province_line: String,
    /// Second header line, `KABUPATEN {REGENCY}` (or `KOTA …` as recorded).
    pub regency_line: String,
    pub nik: String,
    pub name: String,
    /// `{birth_place}, {DD-MM-YYYY}`.
    pub birth: String,
    pub sex: String,
    pub blood_type: String,
    pub street: String,
    /// `{rt}/{rw}`.
    pub rt_rw: String,
    pub village: String,
    pub district: String,
    pub religion: String,
    pub marital_status: String,
    pub occupation: String,
    pub citizenship: String,
    pub valid_until: String,
    /// Place of issue under the photo (the regency).
    pub issue_place: String,
    /// Date of issue under the photo, `DD-MM-YYYY`; empty when unknown.
    pub issue_date: String,
    pub card_serial: String,
    /// JPEG; a placeholder is drawn when it does not decode.
    pub photo: Vec<u8>,
    /// PNG; a placeholder line is drawn when it does not decode.
    pub signature: Vec<u8>,
}

impl CardFace {
    /// The card of `resident` with serial `card_serial`, issued at
    /// `issued` (its UTC date is printed), with `material`'s photo and
    /// signature when given.
    pub fn new(
        resident: &pb::Resident,
        card_serial: &str,
        material: Option<&pb::PrintMaterial>,
        issued: Option<&ektp_proto::Timestamp>,
    ) -> Self {
        let address = resident.address.clone().unwrap_or_default();
        let upper = |s: &str| s.trim().to_uppercase();
        let province = upper(&address.province);
        let regency = upper(&address.regency);
        let birth_date = labels::card_date(resident.birth_date.trim());
        let birth_place = upper(&resident.birth_place);
        Self {
            province_line: prefixed("PROVINSI", &province, &["PROVINSI "]),
            regency_line: prefixed("KABUPATEN", &regency, &["KABUPATEN ", "KOTA "]),
            nik: resident.nik.trim().to_owned(),
            name: upper(&resident.full_name),
            birth: match (birth_place.is_empty(), birth_date.is_empty()) {
                (false, false) => format!("{birth_place}, {birth_date}"),
                (false, true) => birth_place,
                _ => birth_date,
            },
            sex: labels::sex(resident.sex()).to_owned(),
            blood_type: labels::blood_type(resident.blood_type()).to_owned(),
            street: upper(&address.street),
            rt_rw: format!("{}/{}", address.rt.trim(), address.rw.trim()),
            village: upper(&address.village),
            district: upper(&address.district),
            religion: labels::religion(resident.religion()).to_owned(),
            marital_status: labels::marital_status(resident.marital_status()).to_owned(),
            occupation: upper(&resident.occupation),
            citizenship: labels::citizenship(resident.citizenship()).to_owned(),
            valid_until: "SEUMUR HIDUP".to_owned(),
            issue_place: strip_any(&regency, &["KABUPATEN ", "KOTA "]).to_owned(),
            issue_date: issued.map(labels::timestamp_date).unwrap_or_default(),
            card_serial: card_serial.trim().to_owned(),
            photo: material.map(|m| m.photo.clone()).unwrap_or_default(),
            signature: material.map(|m| m.signature.clone()).unwrap_or_default(),
        }
    }
}

/// `{word} {name}`, unless `name` already starts with one of `prefixes`.
fn prefixed(word: &str, name: &str, prefixes: &[&str]) -> String {
    if prefixes.iter().any(|p| name.starts_with(p)) {
        name.to_owned()
    } else {
        format!("{word} {name}")
    }
}

fn strip_any<'a>(name: &'a str, prefixes: &[&str]) -> &'a str {
    prefixes
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// Renders the front of the card as an RGB PNG of [`CARD_WIDTH`] ×
/// [`CARD_HEIGHT`].
pub fn render_front(card: &CardFace) -> Result<Vec<u8>, RenderError> {
    paint(card)?.0.encode_png()
}

// ---- layout (pixels at 300 dpi) ----

const MARGIN: f32 = 36.0;
const INK: Rgb = [24, 28, 40];
const MUTED: Rgb = [70, 82, 104];
/// Background gradient, top-left to bottom-right.
const BG_FROM: Rgb = [170, 214, 238];
const BG_TO: Rgb = [228, 242, 251];
const WAVE: Rgb = [255, 255, 255];

const PHOTO: Area = Area {
    x: 746,
    y: 112,
    w: 230,
    h: 300,
};
const SIGNATURE: Area = Area {
    x: 756,
    y: 486,
    w: 210,
    h: 76,
};
const LABEL_X: f32 = MARGIN;
const SUB_LABEL_X: f32 = MARGIN + 26.0;
const COLON_X: f32 = 262.0;
const VALUE_X: f32 = 280.0;
/// Values end this far left of the photo.
const VALUE_RIGHT: f32 = PHOTO.x as f32 - 18.0;
const ROWS_TOP: f32 = 166.0;
const ROW_HEIGHT: f32 = 34.0;
const BLOOD_LABEL_X: f32 = 500.0;

const HEADER: Style = Style {
    weight: Weight::Bold,
    size: 31.0,
    colour: INK,
};
const NIK: Style = Style {
    weight: Weight::Bold,
    size: 40.0,
    colour: INK,
};
const LABEL: Style = Style {
    weight: Weight::Regular,
    size: 22.0,
    colour: INK,
};
const VALUE: Style = Style {
    weight: Weight::Regular,
    size: 22.0,
    colour: INK,
};
const ISSUE: Style = Style {
    weight: Weight::Regular,
    size: 21.0,
    colour: INK,
};
const SERIAL: Style = Style {
    weight: Weight::Regular,
    size: 15.0,
    colour: MUTED,
};

/// What was drawn besides text, for the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Drawn {
    photo: bool,
    signature: bool,
}

fn paint(card: &CardFace) -> Result<(Canvas, Drawn), RenderError> {
    let fonts = Fonts::load()?;
    let mut canvas = background().clone();

    // Header, centred over the whole card.
    let centre = CARD_WIDTH as f32 / 2.0;
    let full = CARD_WIDTH as f32 - 2.0 * MARGIN;
    fonts.draw(
        &mut canvas,
        &card.province_line,
        HEADER,
        (centre, 20.0),
        Align::Centre,
        full,
    );
    fonts.draw(
        &mut canvas,
        &card.regency_line,
        HEADER,
        (centre, 58.0),
        Align::Centre,
        full,
    );

    // NIK, large.
    let nik_top = 110.0;
    fonts.draw(
        &mut canvas,
        "NIK",
        NIK,
        (LABEL_X, nik_top),
        Align::Left,
        200.0,
    );
    fonts.draw(
        &mut canvas,
        ":",
        NIK,
        (COLON_X - 6.0, nik_top),
        Align::Left,
        20.0,
    );
    fonts.draw(
        &mut canvas,
        &card.nik,
        NIK,
        (VALUE_X + 6.0, nik_top),
        Align::Left,
        VALUE_RIGHT - VALUE_X - 6.0,
    );

    // Labelled rows; the address parts are indented under Alamat.
    let rows: [(&str, bool, &str); 12] = [
        ("Nama", false, &card.name),
        ("Tempat/Tgl Lahir", false, &card.birth),
        ("Jenis Kelamin", false, &card.sex),
        ("Alamat", false, &card.street),
        ("RT/RW", true, &card.rt_rw),
        ("Kel/Desa", true, &card.village),
        ("Kecamatan", true, &card.district),
        ("Agama", false, &card.religion),
        ("Status Perkawinan", false, &card.marital_status),
        ("Pekerjaan", false, &card.occupation),
        ("Kewarganegaraan", false, &card.citizenship),
        ("Berlaku Hingga", false, &card.valid_until),
    ];
    for (i, (label, sub, value)) in rows.iter().enumerate() {
        let top = ROWS_TOP + i as f32 * ROW_HEIGHT;
        let x = if *sub { SUB_LABEL_X } else { LABEL_X };
        fonts.draw(
            &mut canvas,
            label,
            LABEL,
            (x, top),
            Align::Left,
            COLON_X - x - 6.0,
        );
        fonts.draw(&mut canvas, ":", LABEL, (COLON_X, top), Align::Left, 12.0);
        // The sex row shares its line with the blood type.
        let right = if i == 2 {
            BLOOD_LABEL_X - 12.0
        } else {
            VALUE_RIGHT
        };
        fonts.draw(
            &mut canvas,
            value,
            VALUE,
            (VALUE_X, top),
            Align::Left,
            right - VALUE_X,
        );
        if i == 2 {
            let width = fonts.draw(
                &mut canvas,
                "Gol. Darah",
                LABEL,
                (BLOOD_LABEL_X, top),
                Align::Left,
                160.0,
            );
            let colon = BLOOD_LABEL_X + width + 10.0;
            fonts.draw(&mut canvas, ":", LABEL, (colon, top), Align::Left, 12.0);
            fonts.draw(
                &mut canvas,
                &card.blood_type,
                VALUE,
                (colon + 18.0, top),
                Align::Left,
                VALUE_RIGHT - colon - 18.0,
            );
        }
    }

    // Photo, then place and date of issue, then the signature.
    // The placeholder is part of the background; a photo (opaque) covers it.
    let photo = match Picture::from_jpeg(&card.photo) {
        Some(picture) => {
            picture.draw_cover(&mut canvas, PHOTO);
            true
        }
        None => false,
    };
    let photo_centre = PHOTO.x as f32 + PHOTO.w as f32 / 2.0;
    let under_photo = PHOTO.w as f32 + 40.0;
    fonts.draw(
        &mut canvas,
        &card.issue_place,
        ISSUE,
        (photo_centre, PHOTO.y as f32 + PHOTO.h as f32 + 12.0),
        Align::Centre,
        under_photo,
    );
    fonts.draw(
        &mut canvas,
        &card.issue_date,
        ISSUE,
        (photo_centre, PHOTO.y as f32 + PHOTO.h as f32 + 40.0),
        Align::Centre,
        under_photo,
    );
    let signature = match Picture::from_png(&card.signature) {
        Some(picture) => {
            picture.draw_ink(&mut canvas, SIGNATURE, INK);
            true
        }
        None => {
            signature_placeholder(&mut canvas, SIGNATURE);
            false
        }
    };

    // Serial, small, bottom-right corner.
    fonts.draw(
        &mut canvas,
        &card.card_serial,
        SERIAL,
        (CARD_WIDTH as f32 - MARGIN + 12.0, CARD_HEIGHT as f32 - 30.0),
        Align::Right,
        300.0,
    );
    Ok((canvas, Drawn { photo, signature }))
}

/// The light-blue diagonal gradient with faint guilloche-like waves and the
/// photo placeholder, the same on every card: painted once per process.
fn background() -> &'static Canvas {
    static BACKGROUND: OnceLock<Canvas> = OnceLock::new();
    BACKGROUND.get_or_init(|| {
        let mut canvas = Canvas::new(CARD_WIDTH, CARD_HEIGHT, BG_FROM);
        paint_background(&mut canvas);
        photo_placeholder(&mut canvas, PHOTO);
        canvas
    })
}

fn paint_background(canvas: &mut Canvas) {
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let span = w + h;
    canvas.shade(|x, y, _| {
        let (fx, fy) = (x as f32, y as f32);
        let base = mix_rgb(BG_FROM, BG_TO, (fx + fy * 1.4) / (span * 1.1));
        // Two families of thin sine bands, crossing.
        let a = (fx * 0.021 + (fy * 0.013).sin() * 3.2).sin();
        let b = (fy * 0.045 + (fx * 0.009).sin() * 2.4).sin();
        let band = |v: f32| (1.0 - (v.abs() * 9.0)).max(0.0);
        let wave = band(a) * 0.14 + band(b) * 0.09;
        mix_rgb(base, WAVE, wave)
    });
}

/// A neutral grey box with a thin border and a head-and-shoulders outline.
fn photo_placeholder(canvas: &mut Canvas, area: Area) {
    const FILL: Rgb = [206, 208, 212];
    const FIGURE: Rgb = [178, 181, 187];
    const BORDER: Rgb = [120, 124, 132];
    canvas.fill_rect(area.x, area.y, area.w, area.h, FILL);
    let (cx, w, h) = (area.w as f32 / 2.0, area.w as f32, area.h as f32);
    let inside = |x: f32, y: f32| {
        let head = ((x - cx) / (w * 0.2)).powi(2) + ((y - h * 0.38) / (h * 0.17)).powi(2);
        let body = ((x - cx) / (w * 0.44)).powi(2) + ((y - h * 1.02) / (h * 0.4)).powi(2);
        head <= 1.0 || body <= 1.0
    };
    for dy in 0..area.h {
        for dx in 0..area.w {
            // 4 samples per pixel for smooth edges.
            let hits = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                .iter()
                .filter(|(sx, sy)| inside(dx as f32 + sx, dy as f32 + sy))
                .count();
            canvas.blend(area.x + dx, area.y + dy, FIGURE, hits as f32 / 4.0);
        }
    }
    canvas.stroke_rect(area.x, area.y, area.w, area.h, 2, BORDER);
}

/// A thin line where the signature would be.
fn signature_placeholder(canvas: &mut Canvas, area: Area) {
    const LINE: Rgb = [120, 124, 132];
    canvas.fill_rect(area.x + 10, area.y + area.h - 16, area.w - 20, 2, LINE);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn resident() -> pb::Resident {
        pb::Resident {
            nik: "3527014507900001".into(),
            full_name: "Siti Rahmawati".into(),
            birth_place: "Sampang".into(),
            birth_date: "1990-07-05".into(),
            sex: pb::Sex::Female as i32,
            blood_type: pb::BloodType::O as i32,
            address: Some(pb::Address {
                street: "Jl. Trunojoyo No. 12".into(),
                rt: "003".into(),
                rw: "002".into(),
                village: "Banyuanyar".into(),
                district: "Sampang".into(),
                regency: "Sampang".into(),
                province: "Jawa Timur".into(),
            }),
            religion: pb::Religion::Islam as i32,
            marital_status: pb::MaritalStatus::Married as i32,
            occupation: "Petani".into(),
            citizenship: pb::Citizenship::Wni as i32,
            ..pb::Resident::default()
        }
    }

    fn issued() -> ektp_proto::Timestamp {
        ektp_proto::Timestamp {
            seconds: 1_796_000_000,
            nanos: 0,
        }
    }

    fn card() -> CardFace {
        CardFace::new(&resident(), "000000000042", None, Some(&issued()))
    }

    /// A real signature: dark strokes on a transparent background.
    fn signature_png() -> Vec<u8> {
        let (w, h) = (120u32, 40u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let stroke = (y as f32 - 20.0 - (x as f32 * 0.15).sin() * 12.0).abs() < 2.0;
                data.extend_from_slice(&[10, 10, 10, if stroke { 255 } else { 0 }]);
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        (info, buffer)
    }

    #[test]
    fn the_front_is_a_cr80_rgb_png_at_300_dpi() {
        let bytes = render_front(&card()).unwrap();
        let (info, pixels) = decode(&bytes);
        assert_eq!((info.width, info.height), (1012, 638));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        assert_eq!(pixels.len(), 1012 * 638 * 3);
    }

    #[test]
    fn the_face_reads_like_an_e_ktp() {
        let card = card();
        assert_eq!(card.province_line, "PROVINSI JAWA TIMUR");
        assert_eq!(card.regency_line, "KABUPATEN SAMPANG");
        assert_eq!(card.name, "SITI RAHMAWATI");
        assert_eq!(card.birth, "SAMPANG, 05-07-1990");
        assert_eq!(card.sex, "PEREMPUAN");
        assert_eq!(card.blood_type, "O");
        assert_eq!(card.rt_rw, "003/002");
        assert_eq!(card.religion, "ISLAM");
        assert_eq!(card.marital_status, "KAWIN");
        assert_eq!(card.citizenship, "WNI");
        assert_eq!(card.valid_until, "SEUMUR HIDUP");
        assert_eq!(card.issue_place, "SAMPANG");
        assert_eq!(card.issue_date, "30-11-2026");

        let mut city = resident();
        city.address.as_mut().unwrap().regency = "Kota Surabaya".into();
        let city = CardFace::new(&city, "1", None, None);
        assert_eq!(city.regency_line, "KOTA SURABAYA");
        assert_eq!(city.issue_place, "SURABAYA");
        assert_eq!(city.issue_date, "");
    }

    #[test]
    fn rendering_is_deterministic() {
        let card = card();
        assert_eq!(render_front(&card).unwrap(), render_front(&card).unwrap());
    }

    #[test]
    fn a_different_name_gives_a_different_card() {
        let mut other = card();
        other.name = "SITI RAHMAWATI PUTRI".into();
        assert_ne!(
            render_front(&card()).unwrap(),
            render_front(&other).unwrap()
        );
    }

    #[test]
    fn a_long_address_is_cut_with_an_ellipsis_and_does_not_panic() {
        let fonts = Fonts::load().unwrap();
        let long = "JL. ".to_owned() + &"PANGERAN TRUNOJOYO RAYA ".repeat(200);
        let fitted = fonts.fit(&long, VALUE, VALUE_RIGHT - VALUE_X);
        assert!(fitted.ends_with(text::ELLIPSIS), "{fitted}");
        assert!(fonts.width(&fitted, VALUE) <= VALUE_RIGHT - VALUE_X);
        assert!(fitted.starts_with("JL. PANGERAN"));
        assert_eq!(fonts.fit("RT", VALUE, 1000.0), "RT");
        assert_eq!(fonts.fit("WIDE TEXT", VALUE, 0.5), "");

        let mut card = card();
        card.street = long;
        card.name = "X".repeat(5_000);
        card.nik = "9".repeat(300);
        card.province_line = "PROVINSI ".to_owned() + &"Ä".repeat(400);
        card.card_serial = "S".repeat(400);
        let (info, _) = decode(&render_front(&card).unwrap());
        assert_eq!((info.width, info.height), (1012, 638));
    }

    #[test]
    fn an_undecodable_photo_and_signature_become_placeholders() {
        // What the synthetic test residents carry: magic numbers, then filler.
        let mut jpeg_ish = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg_ish.resize(2048, 0x42);
        let mut png_ish = b"\x89PNG\r\n\x1a\n".to_vec();
        png_ish.resize(512, 0x17);
        let mut card = card();
        card.photo = jpeg_ish;
        card.signature = png_ish;
        let (canvas, drawn) = paint(&card).unwrap();
        assert_eq!(
            drawn,
            Drawn {
                photo: false,
                signature: false
            }
        );
        // The grey box with its border, where the photo goes.
        assert_eq!(canvas.get(PHOTO.x, PHOTO.y), [120, 124, 132]);
        assert_eq!(canvas.get(PHOTO.x + 8, PHOTO.y + 8), [206, 208, 212]);
        // The same as no material at all.
        assert_eq!(
            render_front(&card).unwrap(),
            render_front(&self::card()).unwrap()
        );
    }

    #[test]
    fn a_real_photo_and_signature_are_drawn() {
        let material = pb::PrintMaterial {
            photo: include_bytes!("testdata/photo.jpg").to_vec(),
            signature: signature_png(),
        };
        let card = CardFace::new(
            &resident(),
            "000000000042",
            Some(&material),
            Some(&issued()),
        );
        let (canvas, drawn) = paint(&card).unwrap();
        assert_eq!(
            drawn,
            Drawn {
                photo: true,
                signature: true
            }
        );
        // The photo's red background fills the top-left of the box.
        let [r, g, b] = canvas.get(PHOTO.x + 4, PHOTO.y + 4);
        assert!(r > 150 && g < 90 && b < 90, "{r} {g} {b}");
        assert_ne!(
            render_front(&card).unwrap(),
            render_front(&self::card()).unwrap()
        );
    }
}
