//! Datasets built from local files nobody here wrote: fashion-mnist from the
//! idx files of Debian's `dataset-fashion-mnist` package, exactly as
//! ann-benchmarks builds `fashion-mnist-784-euclidean` (60,000 train and
//! 10,000 test images, 784 pixel values each as floats, L2 ground truth of
//! depth 100).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Dataset, Metric, ground_truth, synthetic::GT_DEPTH};

/// Where Debian's `dataset-fashion-mnist` installs the idx files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The importers `anneval datasets import` knows.
pub const IMPORTERS: &[&str] = &["fashion-mnist"];

/// Builds `fashion-mnist-784-euclidean` from the idx files in `dir`
/// (`progress` counts ground-truth queries).
pub fn fashion_mnist(dir: &Path, progress: &(dyn Fn(usize) + Sync)) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!(
            "{} not found: install Debian's package with `sudo apt-get install dataset-fashion-mnist`, \
             or pass --from DIR holding train-images-idx3-ubyte(.gz) and t10k-images-idx3-ubyte(.gz)",
            dir.display()
        );
    }
    let (train, dim) = read_images(dir, "train-images-idx3-ubyte")?;
    let (test, test_dim) = read_images(dir, "t10k-images-idx3-ubyte")?;
    if dim != test_dim {
        bail!("fashion-mnist: train images have {dim} pixels but test images have {test_dim}");
    }
    let gt = ground_truth::compute(&train, &test, dim, Metric::Euclidean, GT_DEPTH, progress);
    let data = Dataset::with_truth(
        "fashion-mnist-784-euclidean",
        Metric::Euclidean,
        dim,
        train,
        test,
        gt,
    );
    data.validate()
        .map_err(|e| anyhow::anyhow!("fashion-mnist: {e}"))?;
    Ok(data)
}

/// Reads `<stem>.gz` (or `<stem>` uncompressed) from `dir`: images as rows
/// of pixel values. Returns (rows, pixels per row).
fn read_images(dir: &Path, stem: &str) -> Result<(Vec<f32>, usize)> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    let (path, bytes) = if gz.exists() {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(
            std::fs::File::open(&gz).with_context(|| format!("opening {}", gz.display()))?,
        )
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: not a readable gzip file", gz.display()))?;
        (gz, bytes)
    } else {
        let bytes = std::fs::read(&plain).with_context(|| {
            format!(
                "{}: neither it nor {} is readable",
                plain.display(),
                gz.display()
            )
        })?;
        (plain, bytes)
    };
    parse_idx_u8(&bytes).with_context(|| format!("{}: not an idx image file", path.display()))
}

/// Parses an idx file of unsigned bytes (type 0x08) with at least two
/// dimensions: the first counts rows, the rest multiply to a row's length.
fn parse_idx_u8(bytes: &[u8]) -> Result<(Vec<f32>, usize)> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        bail!("bad magic number");
    }
    if bytes[2] != 0x08 {
        bail!(
            "element type 0x{:02x}; expected unsigned bytes (0x08)",
            bytes[2]
        );
    }
    let ndim = bytes[3] as usize;
    if ndim < 2 {
        bail!("{ndim} dimensions; expected at least 2");
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        bail!("truncated header");
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let rows = dims[0];
    let row_len: usize = dims[1..].iter().product();
    let expected = rows.checked_mul(row_len).context("dimensions overflow")?;
    let body = &bytes[header..];
    if body.len() != expected {
        bail!(
            "{} data bytes for {rows} × {row_len}; expected {expected}",
            body.len()
        );
    }
    Ok((body.iter().map(|&b| b as f32).collect(), row_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(rows: u32, h: u32, w: u32, body: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [rows, h, w] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn parses_idx_images_as_float_rows() {
        let (rows, len) = parse_idx_u8(&idx(2, 1, 3, &[0, 1, 255, 3, 4, 5])).unwrap();
        assert_eq!(len, 3);
        assert_eq!(rows, vec![0.0, 1.0, 255.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn refuses_malformed_idx() {
        assert!(parse_idx_u8(&[1, 2, 3]).is_err());
        let err = parse_idx_u8(&idx(2, 1, 3, &[0, 1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 6"), "{err}");
        let mut labels = idx(2, 1, 3, &[0; 6]);
        labels[2] = 0x0d;
        assert!(
            parse_idx_u8(&labels)
                .unwrap_err()
                .to_string()
                .contains("0x0d")
        );
    }

    #[test]
    fn missing_package_says_how_to_install_it() {
        let err = fashion_mnist(Path::new("/nonexistent/fashion"), &|_| {}).unwrap_err();
        assert!(
            err.to_string()
                .contains("apt-get install dataset-fashion-mnist"),
            "{err}"
        );
    }
}
