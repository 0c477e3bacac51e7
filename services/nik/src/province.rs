//! The official province codes, the first two digits of a NIK.

/// Every current province code with its name, in ascending code order.
pub const PROVINCES: &[(u8, &str)] = &[
    (11, "Aceh"),
    (12, "Sumatera Utara"),
    (13, "Sumatera Barat"),
    (14, "Riau"),
    (15, "Jambi"),
    (16, "Sumatera Selatan"),
    (17, "Bengkulu"),
    (18, "Lampung"),
    (19, "Kepulauan Bangka Belitung"),
    (21, "Kepulauan Riau"),
    (31, "DKI Jakarta"),
    (32, "Jawa Barat"),
    (33, "Jawa Tengah"),
    (34, "DI Yogyakarta"),
    (35, "Jawa Timur"),
    (36, "Banten"),
    (51, "Bali"),
    (52, "Nusa Tenggara Barat"),
    (53, "Nusa Tenggara Timur"),
    (61, "Kalimantan Barat"),
    (62, "Kalimantan Tengah"),
    (63, "Kalimantan Selatan"),
    (64, "Kalimantan Timur"),
    (65, "Kalimantan Utara"),
    (71, "Sulawesi Utara"),
    (72, "Sulawesi Tengah"),
    (73, "Sulawesi Selatan"),
    (74, "Sulawesi Tenggara"),
    (75, "Gorontalo"),
    (76, "Sulawesi Barat"),
    (81, "Maluku"),
    (82, "Maluku Utara"),
    (91, "Papua"),
    (92, "Papua Barat"),
    (93, "Papua Selatan"),
    (94, "Papua Tengah"),
    (95, "Papua Pegunungan"),
    (96, "Papua Barat Daya"),
];

/// The name of the province with this code, or `None` for an unknown code.
pub fn province_name(code: u8) -> Option<&'static str> {
    PROVINCES
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .and_then(|i| PROVINCES.get(i))
        .map(|&(_, name)| name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_their_official_names() {
        assert_eq!(province_name(11), Some("Aceh"));
        assert_eq!(province_name(31), Some("DKI Jakarta"));
        assert_eq!(province_name(35), Some("Jawa Timur"));
        assert_eq!(province_name(65), Some("Kalimantan Utara"));
        assert_eq!(province_name(96), Some("Papua Barat Daya"));
    }

    #[test]
    fn unknown_codes_have_no_name() {
        for code in [
            0, 10, 20, 22, 30, 37, 50, 60, 70, 77, 80, 83, 90, 97, 99, 255,
        ] {
            assert_eq!(province_name(code), None, "code {code}");
        }
    }

    #[test]
    fn the_list_has_thirty_eight_provinces_in_ascending_order() {
        assert_eq!(PROVINCES.len(), 38);
        assert!(PROVINCES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
