//! Seal and open: round trips, and every way a value must fail to open.

use super::*;

const KEY_A: &str = "/ektp/test/material/3527014101900001";
const KEY_B: &str = "/ektp/test/material/3527014101900002";

fn material() -> PrintMaterial {
    PrintMaterial {
        photo: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5],
        signature: b"\x89PNG\r\n\x1a\nsig".to_vec(),
    }
}

fn file(name: &str, contents: &[u8]) -> (String, String, Vec<u8>) {
    (name.into(), format!("/keys/{name}"), contents.to_vec())
}

fn keys(files: &[(&str, &[u8])], active: Option<&str>) -> Result<MaterialKeys, KeysError> {
    let files = files.iter().map(|(n, c)| file(n, c)).collect();
    MaterialKeys::from_files(files, active, "/keys")
}

const RAW: [u8; 32] = [7; 32];
const HEX: &[u8] = b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

#[test]
fn a_sealed_value_opens_to_the_same_material() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    assert_eq!(keys.active_id(), "k1");
    let value = keys.seal_value(KEY_A, &material()).unwrap();
    assert_eq!(keys.open_value(KEY_A, &value).unwrap(), material());
}

#[test]
fn the_sealed_value_does_not_contain_the_material() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    let value = keys.seal_value(KEY_A, &material()).unwrap();
    let photo = &material().photo;
    assert!(!value.windows(photo.len()).any(|w| w == photo.as_slice()));
}

#[test]
fn every_seal_uses_a_fresh_nonce() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    let a = keys.seal(KEY_A, &material()).unwrap();
    let b = keys.seal(KEY_A, &material()).unwrap();
    assert_eq!(a.nonce.len(), 12);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn a_value_moved_to_another_resident_does_not_open() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    let value = keys.seal_value(KEY_A, &material()).unwrap();
    let err = keys.open_value(KEY_B, &value).unwrap_err();
    assert!(
        matches!(err, SealError::Open(ref id) if id == "k1"),
        "{err}"
    );
}

#[test]
fn a_tampered_ciphertext_or_nonce_does_not_open() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    let sealed = keys.seal(KEY_A, &material()).unwrap();
    let mut flipped = sealed.clone();
    flipped.ciphertext[3] ^= 1;
    assert!(matches!(
        keys.open(KEY_A, &flipped),
        Err(SealError::Open(_))
    ));
    let mut nonce = sealed.clone();
    nonce.nonce[0] ^= 1;
    assert!(matches!(keys.open(KEY_A, &nonce), Err(SealError::Open(_))));
    let mut short = sealed;
    short.nonce.truncate(8);
    assert!(matches!(keys.open(KEY_A, &short), Err(SealError::Open(_))));
}

#[test]
fn a_value_under_an_unknown_key_id_names_it() {
    let old = keys(&[("k1", &RAW)], None).unwrap();
    let value = old.seal_value(KEY_A, &material()).unwrap();
    let new = keys(&[("k2", HEX)], None).unwrap();
    let err = new.open_value(KEY_A, &value).unwrap_err();
    assert!(
        matches!(err, SealError::UnknownKey(ref id) if id == "k1"),
        "{err}"
    );
    assert_eq!(err.key_id(), Some("k1"));
}

#[test]
fn a_value_under_another_key_with_the_same_id_does_not_open() {
    let one = keys(&[("k1", &RAW)], None).unwrap();
    let other = keys(&[("k1", HEX)], None).unwrap();
    let value = one.seal_value(KEY_A, &material()).unwrap();
    assert!(matches!(
        other.open_value(KEY_A, &value),
        Err(SealError::Open(_))
    ));
}

#[test]
fn after_a_rotation_old_values_open_and_new_ones_use_the_active_key() {
    let before = keys(&[("k1", &RAW)], None).unwrap();
    let old = before.seal_value(KEY_A, &material()).unwrap();
    let after = keys(&[("k1", &RAW), ("k2", HEX)], Some("k2")).unwrap();
    assert_eq!(after.open_value(KEY_A, &old).unwrap(), material());
    let new = after.seal(KEY_B, &material()).unwrap();
    assert_eq!(new.key_id, "k2");
    assert_eq!(after.open(KEY_B, &new).unwrap(), material());
    assert_eq!(after.ids().collect::<Vec<_>>(), ["k1", "k2"]);
}

#[test]
fn plaintext_material_is_not_taken_for_a_sealed_value() {
    let keys = keys(&[("k1", &RAW)], None).unwrap();
    let plain = PrintMaterial {
        photo: b"not utf-8 \xff\xfe".to_vec(),
        signature: Vec::new(),
    };
    assert!(matches!(
        keys.open_value(KEY_A, &plain.encode_to_vec()),
        Err(SealError::Format(_))
    ));
    assert!(matches!(
        keys.open_value(KEY_A, b""),
        Err(SealError::Format(_))
    ));
}

#[test]
fn key_files_are_raw_or_hex_with_an_optional_newline() {
    assert_eq!(parse_key(&RAW), Some(RAW.to_vec()));
    let hex = parse_key(HEX).unwrap();
    assert_eq!(hex, (0u8..32).collect::<Vec<_>>());
    assert_eq!(parse_key(&HEX[..64]), Some(hex.clone()));
    let crlf = [&HEX[..64], b"\r\n"].concat();
    assert_eq!(parse_key(&crlf), Some(hex.clone()));
    let upper = String::from_utf8_lossy(&HEX[..64]).to_uppercase();
    assert_eq!(parse_key(upper.as_bytes()), Some(hex));
    for bad in [
        &b""[..],
        &[7u8; 31][..],
        &[7u8; 33][..],
        &HEX[..62],
        b"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    ] {
        assert_eq!(parse_key(bad), None, "{bad:?}");
    }
}

#[test]
fn loading_refuses_bad_names_malformed_keys_and_an_unclear_active_key() {
    assert!(matches!(
        keys(&[("K1", &RAW)], None),
        Err(KeysError::BadId { .. })
    ));
    assert!(matches!(
        keys(&[("k_1", &RAW)], None),
        Err(KeysError::BadId { .. })
    ));
    let long = "k".repeat(33);
    assert!(matches!(
        keys(&[(long.as_str(), &RAW)], None),
        Err(KeysError::BadId { .. })
    ));
    assert!(matches!(
        keys(&[("k1", b"short")], None),
        Err(KeysError::Malformed { .. })
    ));
    assert!(matches!(keys(&[], None), Err(KeysError::Empty { .. })));
    assert!(matches!(
        keys(&[("k1", &RAW)], Some("k2")),
        Err(KeysError::ActiveMissing { .. })
    ));
    assert!(matches!(
        keys(&[("k1", &RAW), ("k2", HEX)], None),
        Err(KeysError::NoActive { .. })
    ));
}

#[test]
fn a_keys_directory_loads_like_a_mounted_secret() {
    let dir = std::env::temp_dir().join(format!("ektp-keys-{}", std::process::id()));
    let data = dir.join("..data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("k1"), HEX).unwrap();
    std::fs::write(dir.join("k1"), HEX).unwrap();
    std::fs::write(dir.join("k2"), RAW).unwrap();
    let keys = MaterialKeys::load(&dir, Some("k2")).unwrap();
    assert_eq!(keys.ids().collect::<Vec<_>>(), ["k1", "k2"]);
    let debug = format!("{keys:?}");
    assert!(debug.contains("k1") && !debug.contains("0a0b"), "{debug}");
    std::fs::remove_dir_all(&dir).unwrap();
    let err = MaterialKeys::load(&dir, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read material keys directory"),
        "{err}"
    );
}
