//! What the image commands print: `skiff images` rows and `skiff image inspect` documents,
//! in Docker's formats.

use crate::store::{Image, ImageStore, StoreError, digest_of};
use jiff::Timestamp;
use serde_json::{Value, json};

/// Docker's `HumanSize` with 3 significant digits: `7.81MB`, `156kB`, `512B`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[i])
}

/// Docker's `HumanDuration` + " ago".
pub fn human_ago(then: Option<Timestamp>, now: Timestamp) -> String {
    let Some(then) = then else { return "N/A".into() };
    let secs = now.as_second() - then.as_second();
    let text = match secs {
        s if s < 1 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".to_string(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        s => {
            let hours = (s as f64 / 3600.0 + 0.5) as i64;
            match hours {
                1 => "About an hour".to_string(),
                h if h < 48 => format!("{h} hours"),
                h if h < 24 * 14 => format!("{} days", h / 24),
                h if h < 24 * 60 => format!("{} weeks", h / 24 / 7),
                h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
                _ => format!("{} years", s / 3600 / 24 / 365),
            }
        }
    };
    format!("{text} ago")
}

/// Align columns with three spaces between them, as Docker's tabwriter does.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn created(img: &Image) -> Option<Timestamp> {
    img.config.created().as_deref().and_then(|c| c.parse().ok())
}

/// The `skiff images` table.
pub fn images_table(store: &ImageStore, now: Timestamp) -> Result<String, StoreError> {
    let mut rows = vec![vec!["REPOSITORY".into(), "TAG".into(), "IMAGE ID".into(), "CREATED".into(), "SIZE".into()]];
    let mut entries = store.list()?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (r, desc) in entries {
        let img = store.image_by_manifest(&digest_of(&desc)?)?;
        rows.push(vec![
            r.familiar_name(),
            r.tag.clone().unwrap_or_else(|| "<none>".into()),
            img.id().hex()[..12].to_string(),
            human_ago(created(&img), now),
            human_size(img.size()),
        ]);
    }
    Ok(columns(&rows))
}

/// `skiff image inspect`: Docker-like fields over the OCI config.
pub fn inspect(store: &ImageStore, img: &Image) -> Result<Value, StoreError> {
    let tags: Vec<String> = store
        .list()?
        .into_iter()
        .filter(|(_, d)| digest_of(d).is_ok_and(|x| x == img.manifest_digest))
        .map(|(r, _)| r.to_string())
        .collect();
    Ok(json!({
        "Id": img.id().to_string(),
        "RepoTags": tags,
        "ManifestDigest": img.manifest_digest.to_string(),
        "Created": img.config.created(),
        "Architecture": img.config.architecture().to_string(),
        "Os": img.config.os().to_string(),
        "Config": img.config.config(),
        "RootFS": img.config.rootfs(),
        "History": img.config.history(),
        "Size": img.size(),
        "Layers": img.manifest.layers().iter().map(|l| json!({"digest": l.digest().to_string(), "size": l.size(), "mediaType": l.media_type().to_string()})).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_units() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(7_812_345), "7.81MB");
        assert_eq!(human_size(156_000), "156kB");
        assert_eq!(human_size(12_000_000), "12MB");
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().expect("ts");
        let ago = |s: i64| human_ago(Some(Timestamp::from_second(now.as_second() - s).expect("ts")), now);
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(600), "10 minutes ago");
        assert_eq!(ago(3 * 3600), "3 hours ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
    }

    #[test]
    fn aligns_columns() {
        let t = columns(&[vec!["A".into(), "BB".into()], vec!["CCC".into(), "D".into()]]);
        assert_eq!(t, "A     BB\nCCC   D\n");
    }
}
