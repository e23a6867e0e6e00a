//! What an upload is, read from its first bytes rather than taken from the
//! type its part declares: store media must be one of six image and video
//! formats (AutoGPT's list), and a private upload may be anything but a
//! native executable (AutoGPT virus-scans uploads; this server does not, so
//! it refuses what a scanner would be there to catch first).

/// An image or video format store media may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaKind {
    Jpeg,
    Png,
    Gif,
    Webp,
    Mp4,
    Webm,
}

impl MediaKind {
    const ALL: [MediaKind; 6] =
        [MediaKind::Jpeg, MediaKind::Png, MediaKind::Gif, MediaKind::Webp, MediaKind::Mp4, MediaKind::Webm];

    /// The MIME type it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaKind::Jpeg => "image/jpeg",
            MediaKind::Png => "image/png",
            MediaKind::Gif => "image/gif",
            MediaKind::Webp => "image/webp",
            MediaKind::Mp4 => "video/mp4",
            MediaKind::Webm => "video/webm",
        }
    }

    /// The extension its URL ends with (clients tell videos from images
    /// by it).
    pub fn extension(self) -> &'static str {
        match self {
            MediaKind::Jpeg => "jpg",
            MediaKind::Png => "png",
            MediaKind::Gif => "gif",
            MediaKind::Webp => "webp",
            MediaKind::Mp4 => "mp4",
            MediaKind::Webm => "webm",
        }
    }

    /// The kind a stored file's extension names.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.extension() == ext)
    }

    /// The kind a declared MIME type names.
    fn from_content_type(declared: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.content_type() == declared)
    }

    /// The kind the bytes' signature shows.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0xff, 0xd8, 0xff, ..] => Some(MediaKind::Jpeg),
            [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => Some(MediaKind::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(MediaKind::Gif),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(MediaKind::Webp),
            [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some(MediaKind::Mp4),
            [0x1a, 0x45, 0xdf, 0xa3, ..] => Some(MediaKind::Webm),
            _ => None,
        }
    }
}

/// Why store media was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MediaRefusal {
    /// Declared as something other than the six formats.
    Unsupported(String),
    /// The bytes are none of the six formats.
    UnknownSignature,
    /// Declared as one format, the bytes are another (or none).
    Mismatch,
}

impl MediaRefusal {
    /// The sentence answered.
    pub fn message(&self) -> String {
        match self {
            MediaRefusal::Unsupported(declared) => {
                format!("File type not supported. Must be jpeg, png, gif, webp, mp4 or webm. Content type: {declared}")
            }
            MediaRefusal::UnknownSignature => {
                "Invalid file signature: not a jpeg, png, gif, webp, mp4 or webm file".to_owned()
            }
            MediaRefusal::Mismatch => "File signature does not match content type".to_owned(),
        }
    }
}

/// The media kind of an upload: its signature decides, and a declared type
/// must agree with it. A part sent without a type, or as plain
/// `application/octet-stream`, is what its bytes are.
pub(super) fn media_kind(bytes: &[u8], declared: Option<&str>) -> Result<MediaKind, MediaRefusal> {
    let sniffed = MediaKind::sniff(bytes);
    match declared.map(normalise).as_deref() {
        None | Some("application/octet-stream") => sniffed.ok_or(MediaRefusal::UnknownSignature),
        Some(declared) => match MediaKind::from_content_type(declared) {
            None => Err(MediaRefusal::Unsupported(declared.to_owned())),
            Some(kind) if sniffed == Some(kind) => Ok(kind),
            Some(_) => Err(MediaRefusal::Mismatch),
        },
    }
}

/// Whether the bytes are a native executable: ELF, Windows PE/DOS, Mach-O
/// (and fat Mach-O, whose signature Java class files share).
pub(super) fn is_executable(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [0x7f, b'E', b'L', b'F', ..]
            | [b'M', b'Z', ..]
            | [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
            | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
            | [0xca, 0xfe, 0xba, 0xbe, ..]
    )
}

/// A declared MIME type as kept and served: `type/subtype` in lower case,
/// parameters dropped; anything else (or nothing) is
/// `application/octet-stream`, so what is served as a header is always a
/// well-formed type.
pub(super) fn normalise(declared: &str) -> String {
    let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match essence.split_once('/') {
        Some((kind, sub)) if essence.len() <= 127 && token(kind) && token(sub) => essence,
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_signature_decides_and_the_declared_type_must_agree() {
        assert_eq!(media_kind(PNG, Some("image/png")), Ok(MediaKind::Png));
        assert_eq!(media_kind(PNG, None), Ok(MediaKind::Png));
        assert_eq!(media_kind(PNG, Some("application/octet-stream")), Ok(MediaKind::Png));
        assert_eq!(media_kind(PNG, Some("image/jpeg")), Err(MediaRefusal::Mismatch));
        assert_eq!(media_kind(b"<svg/>", Some("image/png")), Err(MediaRefusal::Mismatch));
        assert_eq!(media_kind(b"<svg/>", None), Err(MediaRefusal::UnknownSignature));
        assert!(matches!(media_kind(PNG, Some("image/svg+xml")), Err(MediaRefusal::Unsupported(_))));
        assert_eq!(media_kind(b"\0\0\0\x18ftypmp42", Some("video/mp4")), Ok(MediaKind::Mp4));
        assert_eq!(media_kind(b"RIFF\0\0\0\0WEBPVP8 ", Some("IMAGE/WEBP; q=1")), Ok(MediaKind::Webp));
    }

    #[test]
    fn executables_are_recognised() {
        assert!(is_executable(b"\x7fELF\x02\x01"));
        assert!(is_executable(b"MZ\x90\0"));
        assert!(is_executable(&[0xcf, 0xfa, 0xed, 0xfe, 7]));
        assert!(!is_executable(b"hello, world"));
        assert!(!is_executable(PNG));
    }

    #[test]
    fn declared_types_are_normalised_or_replaced() {
        assert_eq!(normalise("Text/Plain; charset=utf-8"), "text/plain");
        assert_eq!(normalise("text/html\r\nX-Evil: 1"), "application/octet-stream");
        assert_eq!(normalise("nonsense"), "application/octet-stream");
        assert_eq!(normalise(""), "application/octet-stream");
    }
}
