//! ann-benchmarks HDF5 files, read and written exactly.
//!
//! Layout: datasets `train` (N×D), `test` (Q×D), `neighbors` (Q×K, ids into
//! train) and `distances` (Q×K, ascending: true L2 for euclidean, 1 - cos for
//! angular); root attributes `distance` ("euclidean" | "angular"),
//! `dimension`, `point_type` and `type`. Strings are variable-length UTF-8,
//! as h5py writes them.
//!
//! Reading accepts the hosted files' types (f32 vectors, i32 neighbours) and
//! locally generated ones (f64 vectors, i64 neighbours); only `distance` is
//! required of the attributes. Writing uses f32 and i32, like the hosted
//! files, into a temporary file renamed into place, so no half-written file
//! is ever left behind. Every error names the file and the problem.
//!
//! libhdf5 can crash on a corrupt file, so files are read in a forked child
//! process ([`crate::isolate`]) that streams the arrays back: a crash there is
//! an error naming the file, never the end of anneval.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hdf5::types::{FloatSize, TypeDescriptor, VarLenUnicode};

use super::split::QuerySet;
use super::{Dataset, Metric};

/// What `anneval datasets info` shows about a file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// Root attributes, as text.
    pub attributes: Vec<(String, String)>,
    /// Datasets: name, shape, element type.
    pub datasets: Vec<(String, Vec<usize>, String)>,
}

/// An open file and its length on disk.
struct File {
    h5: hdf5::File,
    len: u64,
}

impl std::ops::Deref for File {
    type Target = hdf5::File;

    fn deref(&self) -> &hdf5::File {
        &self.h5
    }
}

fn open(path: &Path) -> Result<File> {
    let len = std::fs::metadata(path)
        .map_err(|_| anyhow::anyhow!("{}: no such file", path.display()))?
        .len();
    let h5 = hdf5::File::open(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a readable HDF5 file (truncated, or another format?): {e}",
            path.display()
        )
    })?;
    Ok(File { h5, len })
}

/// Forks while holding libhdf5's global lock, so no other thread is inside
/// the library when the child starts.
fn fork_outside_the_library() -> libc::pid_t {
    // SAFETY: the child only reads the file, writes to a pipe and _exits.
    hdf5::sync::sync(|| unsafe { libc::fork() })
}

/// Names the file in a reader error that does not already.
fn about(path: &Path, err: anyhow::Error) -> anyhow::Error {
    let text = format!("{err:#}");
    if text.contains(&path.display().to_string()) {
        err
    } else {
        anyhow::anyhow!(
            "{}: {text} (the file is corrupt: re-download or re-make it)",
            path.display()
        )
    }
}

/// How long the reader of a file may take: generous for large files (a
/// minute plus a second per 50 MB), yet finite for a corrupt one that makes
/// the library loop.
fn reading_deadline(path: &Path) -> std::time::Duration {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    std::time::Duration::from_secs(60 + len / 50_000_000)
}

/// The layout of an HDF5 file, without judging it.
pub fn layout(path: &Path) -> Result<Layout> {
    crate::isolate::in_child(
        reading_deadline(path),
        fork_outside_the_library,
        |out| Ok(serde_json::to_writer(out, &layout_here(path)?)?),
        |input| Ok(serde_json::from_reader(input)?),
    )
    .map_err(|e| about(path, e))
}

/// Reads an ann-benchmarks file; the dataset is named after the file stem.
pub fn read(path: &Path) -> Result<Dataset> {
    crate::isolate::in_child(
        reading_deadline(path),
        fork_outside_the_library,
        |out| Ok(encode(&read_here(path)?, out)?),
        decode,
    )
    .map_err(|e| about(path, e))
}

/// The dataset as it crosses the pipe: header, then the raw arrays.
fn encode(data: &Dataset, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let name = data.name.as_bytes();
    let header = [
        name.len() as u64,
        u64::from(data.metric == Metric::Angular),
        data.dim as u64,
        data.gt_k as u64,
        data.train.len() as u64,
        data.test.len() as u64,
    ];
    out.write_all(bytemuck::cast_slice(&header))?;
    out.write_all(name)?;
    out.write_all(bytemuck::cast_slice(&data.train))?;
    out.write_all(bytemuck::cast_slice(&data.test))?;
    out.write_all(bytemuck::cast_slice(&data.neighbors))?;
    out.write_all(bytemuck::cast_slice(&data.distances))
}

fn decode(input: &mut dyn std::io::Read) -> std::io::Result<Dataset> {
    let mut header = [0u64; 6];
    input.read_exact(bytemuck::cast_slice_mut(&mut header))?;
    let [name_len, angular, dim, gt_k, train_len, test_len] = header.map(|v| v as usize);
    let mut name = vec![0u8; name_len];
    input.read_exact(&mut name)?;
    let mut read_f32s = |len: usize| -> std::io::Result<Vec<f32>> {
        let mut v = vec![0f32; len];
        input.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        Ok(v)
    };
    let train = read_f32s(train_len)?;
    let test = read_f32s(test_len)?;
    let queries = test_len / dim.max(1);
    let mut neighbors = vec![0u32; queries * gt_k];
    input.read_exact(bytemuck::cast_slice_mut(&mut neighbors))?;
    let mut distances = vec![0f32; queries * gt_k];
    input.read_exact(bytemuck::cast_slice_mut(&mut distances))?;
    Ok(Dataset {
        name: String::from_utf8_lossy(&name).into_owned(),
        metric: if angular == 1 {
            Metric::Angular
        } else {
            Metric::Euclidean
        },
        dim,
        train,
        test,
        neighbors,
        distances,
        gt_k,
        queries: QuerySet::All,
    })
}

fn layout_here(path: &Path) -> Result<Layout> {
    let file = open(path)?;
    let mut attributes = Vec::new();
    for name in file.attr_names().unwrap_or_default() {
        let value = file
            .attr(&name)
            .ok()
            .and_then(|a| attribute_text(&a).ok())
            .unwrap_or_else(|| "<unreadable>".into());
        attributes.push((name, value));
    }
    let mut datasets = Vec::new();
    for name in file.member_names().unwrap_or_default() {
        if let Ok(ds) = file.dataset(&name) {
            let ty = ds
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_or("<unknown>".into(), |d| d.to_string());
            datasets.push((name, ds.shape(), ty));
        }
    }
    Ok(Layout {
        attributes,
        datasets,
    })
}

fn read_here(path: &Path) -> Result<Dataset> {
    let file = open(path)?;
    let at = |what: &str| format!("{}: {what}", path.display());
    let metric_text = file
        .attr("distance")
        .map_err(|_| anyhow::anyhow!(at("missing the root attribute `distance`")))
        .and_then(|a| attribute_text(&a).with_context(|| at("reading attribute `distance`")))?;
    let metric: Metric = metric_text
        .parse()
        .map_err(|e: String| anyhow::anyhow!(at(&e)))?;

    let (train, train_shape) =
        read_floats(&file, "train").with_context(|| at("dataset `train`"))?;
    let (test, test_shape) = read_floats(&file, "test").with_context(|| at("dataset `test`"))?;
    let (neighbors, nb_shape) =
        read_ids(&file, "neighbors").with_context(|| at("dataset `neighbors`"))?;
    let (distances, dist_shape) =
        read_floats(&file, "distances").with_context(|| at("dataset `distances`"))?;

    let dim = train_shape[1];
    if test_shape[1] != dim {
        bail!(at(&format!(
            "`test` vectors have {} dimensions but `train` vectors have {dim}",
            test_shape[1]
        )));
    }
    if let Ok(attr) = file.attr("dimension")
        && let Ok(declared) = attr.read_scalar::<i64>()
        && declared != dim as i64
    {
        bail!(at(&format!(
            "the `dimension` attribute says {declared} but `train` has {dim} columns"
        )));
    }
    if nb_shape != dist_shape {
        bail!(at(&format!(
            "`neighbors` is {:?} but `distances` is {:?}; they must match",
            nb_shape, dist_shape
        )));
    }
    if nb_shape[0] != test_shape[0] {
        bail!(at(&format!(
            "`neighbors` has {} rows but `test` has {} queries",
            nb_shape[0], test_shape[0]
        )));
    }
    let n_train = train_shape[0];
    let neighbors = neighbors
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            u32::try_from(id)
                .ok()
                .filter(|&id| (id as usize) < n_train)
                .ok_or_else(|| {
                    anyhow::anyhow!(at(&format!(
                        "`neighbors` row {} holds id {id}, outside train's {n_train} points",
                        i / nb_shape[1].max(1)
                    )))
                })
        })
        .collect::<Result<Vec<u32>>>()?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data = Dataset {
        name,
        metric,
        dim,
        train,
        test,
        neighbors,
        distances,
        gt_k: nb_shape[1],
        queries: QuerySet::All,
    };
    data.validate().map_err(|e| anyhow::anyhow!(at(&e)))?;
    Ok(data)
}

/// A 2-D dataset of numbers as f32, with its shape.
fn read_floats(file: &File, name: &str) -> Result<(Vec<f32>, [usize; 2])> {
    let ds = file
        .dataset(name)
        .map_err(|_| anyhow::anyhow!("is missing"))?;
    let shape = shape_2d(&ds)?;
    let values = match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::Float(FloatSize::U4) => read_all::<f32>(&ds, file)?,
        TypeDescriptor::Float(_) | TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            let wide = read_all::<f64>(&ds, file)?;
            wide.into_iter().map(|x| x as f32).collect()
        }
        other => bail!("holds {other}, not numbers"),
    };
    Ok((values, shape))
}

/// A 2-D dataset of integer ids as i64, with its shape.
fn read_ids(file: &File, name: &str) -> Result<(Vec<i64>, [usize; 2])> {
    let ds = file
        .dataset(name)
        .map_err(|_| anyhow::anyhow!("is missing"))?;
    let shape = shape_2d(&ds)?;
    match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::Integer(_) => Ok((read_all::<i64>(&ds, file)?, shape)),
        TypeDescriptor::Unsigned(_) => {
            let ids = read_all::<u64>(&ds, file)?;
            let ids = ids.into_iter().map(|x| x.min(i64::MAX as u64) as i64);
            Ok((ids.collect(), shape))
        }
        other => bail!("holds {other}, not integer ids"),
    }
}

/// How much larger than the file a compressed dataset may claim to be.
const MAX_COMPRESSION: u64 = 256;

/// Every element of `ds` as `T`. What the dataset claims to hold is checked
/// against what the file can hold before anything is allocated, and the
/// allocation itself is fallible: a corrupt header cannot make the host
/// reserve absurd amounts of memory.
fn read_all<T: hdf5::H5Type + Copy + Default>(ds: &hdf5::Dataset, file: &File) -> Result<Vec<T>> {
    let elements = ds
        .shape()
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .context("claims more elements than can be counted (corrupt file?)")?;
    let stored = (elements as u64).saturating_mul(ds.dtype()?.size() as u64);
    let bound = if ds.filters().is_empty() {
        file.len
    } else {
        file.len.saturating_mul(MAX_COMPRESSION)
    };
    if stored > bound {
        bail!(
            "claims {elements} elements ({stored} bytes) in a file of {} bytes: truncated or corrupt",
            file.len
        );
    }
    let mut values = Vec::new();
    values
        .try_reserve_exact(elements)
        .map_err(|_| anyhow::anyhow!("needs {stored} bytes of memory, more than is available"))?;
    values.resize(elements, T::default());
    ds.read_into_raw(&mut values)?;
    Ok(values)
}

fn shape_2d(ds: &hdf5::Dataset) -> Result<[usize; 2]> {
    match ds.shape()[..] {
        [rows, cols] if rows > 0 && cols > 0 => Ok([rows, cols]),
        ref other => {
            bail!("has shape {other:?}; expected two non-zero dimensions (rows × columns)")
        }
    }
}

/// The text of a string attribute (variable or fixed length), or the number
/// of a numeric one.
fn attribute_text(attr: &hdf5::Attribute) -> Result<String> {
    Ok(match attr.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => attr.read_scalar::<VarLenUnicode>()?.as_str().to_string(),
        TypeDescriptor::VarLenAscii => attr
            .read_scalar::<hdf5::types::VarLenAscii>()?
            .as_str()
            .to_string(),
        TypeDescriptor::FixedAscii(_) => attr
            .read_scalar::<hdf5::types::FixedAscii<256>>()?
            .as_str()
            .to_string(),
        TypeDescriptor::FixedUnicode(_) => attr
            .read_scalar::<hdf5::types::FixedUnicode<256>>()?
            .as_str()
            .to_string(),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            attr.read_scalar::<i64>()?.to_string()
        }
        TypeDescriptor::Float(_) => attr.read_scalar::<f64>()?.to_string(),
        other => bail!("attribute of type {other}"),
    })
}

/// Writes `data` in the ann-benchmarks layout (f32 vectors and distances,
/// i32 neighbours, h5py-style string attributes), atomically.
pub fn write(path: &Path, data: &Dataset) -> Result<()> {
    data.validate()
        .map_err(|e| anyhow::anyhow!("refusing to write {}: {e}", path.display()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::paths::ensure_dir(dir)?;
    // A named temporary file in the same directory: HDF5 writes it, a rename
    // publishes it, and if anything fails it is deleted when dropped.
    let tmp = tempfile::Builder::new()
        .prefix(".anneval-")
        .suffix(".hdf5.part")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    write_file(tmp.path(), data).with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("moving the finished file to {}", path.display()))?;
    Ok(())
}

fn write_file(path: &Path, data: &Dataset) -> Result<()> {
    let file = hdf5::File::create(path)?;
    let string_attr = |name: &str, value: &str| -> Result<()> {
        let value: VarLenUnicode = value.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        file.new_attr::<VarLenUnicode>()
            .shape(())
            .create(name)?
            .write_scalar(&value)?;
        Ok(())
    };
    string_attr("distance", data.metric.as_str())?;
    string_attr("point_type", "float")?;
    string_attr("type", "dense")?;
    file.new_attr::<i64>()
        .shape(())
        .create("dimension")?
        .write_scalar(&(data.dim as i64))?;

    let (n, q, k) = (data.n_train(), data.n_test(), data.gt_k);
    file.new_dataset::<f32>()
        .shape((n, data.dim))
        .create("train")?
        .write_raw(&data.train[..])?;
    file.new_dataset::<f32>()
        .shape((q, data.dim))
        .create("test")?
        .write_raw(&data.test[..])?;
    let ids: Vec<i32> = data
        .neighbors
        .iter()
        .map(|&id| i32::try_from(id).context("neighbour id beyond i32"))
        .collect::<Result<_>>()?;
    file.new_dataset::<i32>()
        .shape((q, k))
        .create("neighbors")?
        .write_raw(&ids[..])?;
    file.new_dataset::<f32>()
        .shape((q, k))
        .create("distances")?
        .write_raw(&data.distances[..])?;
    file.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            name: "tiny".into(),
            metric: Metric::Angular,
            dim: 3,
            train: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0],
            test: vec![1.0, 0.1, 0.0, 0.0, 0.9, 0.1],
            neighbors: vec![0, 2, 1, 1, 2, 0],
            distances: vec![0.005, 0.2, 0.9, 0.006, 0.25, 1.0],
            gt_k: 3,
            queries: QuerySet::All,
        }
    }

    #[test]
    fn round_trip_is_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.hdf5");
        write(&path, &tiny()).unwrap();
        assert_eq!(read(&path).unwrap(), tiny());
        let layout = layout(&path).unwrap();
        let attrs: Vec<(&str, &str)> = layout
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for want in [
            ("distance", "angular"),
            ("dimension", "3"),
            ("point_type", "float"),
            ("type", "dense"),
        ] {
            assert!(attrs.contains(&want), "{want:?} in {attrs:?}");
        }
        assert!(
            layout
                .datasets
                .iter()
                .any(|(n, s, _)| n == "neighbors" && s == &vec![2, 3])
        );
        // Only the finished file is left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.hdf5");
        let mut bad = tiny();
        bad.train[0] = f32::NAN;
        let err = write(&path, &bad).unwrap_err().to_string();
        assert!(err.contains("bad.hdf5") && err.contains("NaN"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
