//! The photo list a shard is cut from: a folder (as `captioner batch DIR` lists it), a list
//! file (one photo or tar archive per line), or a tar archive of photos in the WebDataset
//! layout (`000001.jpg`, `000001.txt`, ... members: the photos are read straight out of the
//! archive, never unpacked).
//!
//! The list is sorted by path, so every machine cuts the same shards whatever order its file
//! system lists files in; [`PhotoList::part`] is the K-th of N contiguous parts.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ShardError;
use crate::encoder::ImageLoadError;
use crate::jobs::caption::{self, Unreadable};

/// Where the photos come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhotoSource {
    /// A folder (with its sub-folders), or a tar archive of photos.
    Path(PathBuf),
    /// A list file: one photo or tar archive per line (relative to the list's folder; empty
    /// lines and lines starting with `#` are skipped), or itself a tar archive.
    List(PathBuf),
}

/// One photo of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    /// Its name relative to the folder, the list's folder or the archive (the records'
    /// `image`).
    pub image: String,
    /// The file, or `ARCHIVE/MEMBER` for a photo in a tar archive (the records' `path`).
    pub path: PathBuf,
    at: Location,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    File,
    /// `size` bytes at `offset` of the archive `archives[archive]`.
    Member {
        archive: usize,
        offset: u64,
        size: u64,
    },
}

/// The sorted photos of a [`PhotoSource`].
#[derive(Clone, Debug, Default)]
pub struct PhotoList {
    pub photos: Vec<Photo>,
    archives: Vec<PathBuf>,
    /// Folders (or folder entries) that could not be read, with the reason.
    pub unreadable: Unreadable,
}

impl PhotoList {
    /// Lists the photos of `source`, sorted by path.
    pub fn open(source: &PhotoSource) -> Result<PhotoList, ShardError> {
        let mut list = PhotoList::default();
        match source {
            PhotoSource::Path(p) if p.is_dir() => {
                let (paths, unreadable) =
                    caption::list_photos(p).map_err(|e| ShardError::List {
                        path: p.clone(),
                        line: None,
                        message: e.report(),
                    })?;
                list.unreadable = unreadable;
                list.photos = paths
                    .into_iter()
                    .map(|path| Photo {
                        image: path.strip_prefix(p).unwrap_or(&path).display().to_string(),
                        path,
                        at: Location::File,
                    })
                    .collect();
            }
            PhotoSource::Path(p) => {
                if !p.exists() {
                    return Err(ShardError::List {
                        path: p.clone(),
                        line: None,
                        message: "no such folder or file".into(),
                    });
                }
                if !is_tar(p)? {
                    return Err(ShardError::List {
                        path: p.clone(),
                        line: None,
                        message: "neither a folder nor a tar archive of photos".into(),
                    });
                }
                list.add_archive(p, "")?;
            }
            PhotoSource::List(l) if is_tar(l)? => list.add_archive(l, "")?,
            PhotoSource::List(l) => list.read_list(l)?,
        }
        list.photos.sort_by(|a, b| a.path.cmp(&b.path));
        list.photos.dedup_by(|a, b| a.path == b.path);
        Ok(list)
    }

    /// Whether some of the photos are members of tar archives (not files of their own).
    pub fn in_archives(&self) -> bool {
        !self.archives.is_empty()
    }

    /// The K-th of N contiguous parts of the list (K from 0): the same photos on every
    /// machine, every photo in exactly one part.
    pub fn part(&self, k: usize, n: usize) -> Range<usize> {
        part(self.photos.len(), k, n)
    }

    /// The SHA-256 of the whole list's photo names, one per line: two runs cut the same
    /// shards exactly when it is the same.
    pub fn hash(&self) -> String {
        let mut names = Vec::new();
        for p in &self.photos {
            names.extend_from_slice(p.image.as_bytes());
            names.push(b'\n');
        }
        crate::files::bytes_hash(&names)
    }

    /// The bytes of photo `i`: the file, or the member of its archive.
    pub fn read(&self, i: usize) -> Result<Vec<u8>, ImageLoadError> {
        let photo = &self.photos[i];
        match photo.at {
            Location::File => caption::read_photo_file(&photo.path),
            Location::Member {
                archive,
                offset,
                size,
            } => {
                let archive = &self.archives[archive];
                let io = |source: std::io::Error| ImageLoadError::Io {
                    path: photo.path.clone(),
                    source,
                };
                let mut file = std::fs::File::open(archive).map_err(io)?;
                file.seek(SeekFrom::Start(offset)).map_err(io)?;
                let len = usize::try_from(size).map_err(|_| {
                    io(std::io::Error::other(format!(
                        "a member of {size} bytes does not fit in memory"
                    )))
                })?;
                let mut bytes = vec![0u8; len];
                file.read_exact(&mut bytes).map_err(|e| {
                    io(std::io::Error::new(
                        e.kind(),
                        format!("{}: the archive ends inside this member", archive.display()),
                    ))
                })?;
                Ok(bytes)
            }
        }
    }

    /// Adds the photos in the tar archive `path`, named `prefix` + member name.
    fn add_archive(&mut self, path: &Path, prefix: &str) -> Result<(), ShardError> {
        let index = self.archives.len();
        self.archives.push(path.to_path_buf());
        let tar_error = |source: std::io::Error| ShardError::Tar {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(tar_error)?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        for entry in archive.entries_with_seek().map_err(tar_error)? {
            let entry = entry.map_err(tar_error)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let bytes = entry.path_bytes();
            let name = String::from_utf8_lossy(&bytes);
            let mut name = name.as_ref();
            while let Some(rest) = name.strip_prefix("./") {
                name = rest;
            }
            let member = Path::new(name);
            if !crate::dataset::has_image_extension(member) {
                continue;
            }
            self.photos.push(Photo {
                image: format!("{prefix}{name}"),
                path: path.join(member),
                at: Location::Member {
                    archive: index,
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
            });
        }
        Ok(())
    }

    /// Adds the photos a list file names.
    fn read_list(&mut self, list: &Path) -> Result<(), ShardError> {
        let bytes = std::fs::read(list).map_err(|source| ShardError::Io {
            path: list.to_path_buf(),
            source,
        })?;
        let base = list.parent().unwrap_or(Path::new(""));
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            let entry = line.trim_end_matches('\r').trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let path = base.join(entry);
            let is_archive = Path::new(entry)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tar"));
            if is_archive {
                self.add_archive(&path, &format!("{entry}/"))
                    .map_err(|e| ShardError::List {
                        path: list.to_path_buf(),
                        line: Some(n + 1),
                        message: e.to_string(),
                    })?;
            } else if crate::dataset::has_image_extension(&path) {
                // A photo that is missing is kept: it fails when read (and is reported), so
                // the list, and every shard cut from it, is the same on every machine.
                self.photos.push(Photo {
                    image: entry.to_string(),
                    path,
                    at: Location::File,
                });
            } else {
                return Err(ShardError::List {
                    path: list.to_path_buf(),
                    line: Some(n + 1),
                    message: format!(
                        "{entry:?} is neither a photo (by its extension) nor a .tar archive"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The K-th of N contiguous parts of `total` items (K from 0): `total*K/N .. total*(K+1)/N`.
pub fn part(total: usize, k: usize, n: usize) -> Range<usize> {
    let n = n.max(1) as u128;
    let at = |k: usize| (total as u128 * (k as u128).min(n) / n) as usize;
    at(k)..at(k + 1)
}

/// Whether `path` is a tar archive: named `.tar`, or with the ustar magic of a tar header.
fn is_tar(path: &Path) -> Result<bool, ShardError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
    {
        return Ok(true);
    }
    let mut header = [0u8; 512];
    let mut file = std::fs::File::open(path).map_err(|source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ShardError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(filled == header.len() && &header[257..262] == b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_item_once_in_order() {
        for total in [0, 1, 3, 7, 80, 1001] {
            for n in [1, 2, 3, 4, 7, 10] {
                let mut next = 0;
                for k in 0..n {
                    let r = part(total, k, n);
                    assert_eq!(r.start, next, "total {total}, {k}/{n}");
                    assert!(r.len() <= total.div_ceil(n));
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
        assert_eq!(part(10, 0, 4), 0..2);
        assert_eq!(part(10, 3, 4), 7..10);
    }

    fn tar_with(dir: &Path, members: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("photos.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, bytes) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        b.finish().unwrap();
        path
    }

    #[test]
    fn tar_members_are_listed_sorted_and_read_in_place() {
        let t = tempfile::tempdir().unwrap();
        let tar = tar_with(
            t.path(),
            &[
                ("000002.jpg", b"two"),
                ("000002.txt", b"a caption"),
                ("./000001.jpg", b"one"),
                ("sub/000003.png", b"three"),
            ],
        );
        let list = PhotoList::open(&PhotoSource::Path(tar.clone())).unwrap();
        let names: Vec<&str> = list.photos.iter().map(|p| p.image.as_str()).collect();
        assert_eq!(names, ["000001.jpg", "000002.jpg", "sub/000003.png"]);
        assert_eq!(list.photos[0].path, tar.join("000001.jpg"));
        assert_eq!(list.read(0).unwrap(), b"one");
        assert_eq!(list.read(2).unwrap(), b"three");
        // The same archive named in a list file: the same photos, named under it.
        std::fs::write(t.path().join("list.txt"), "# shards\nphotos.tar\n\n").unwrap();
        let listed = PhotoList::open(&PhotoSource::List(t.path().join("list.txt"))).unwrap();
        assert_eq!(listed.photos[1].image, "photos.tar/000002.jpg");
        assert_eq!(listed.read(1).unwrap(), b"two");
    }

    #[test]
    fn a_list_is_sorted_and_a_bad_line_is_named() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("list.txt"), "b.jpg\r\na.png\nb.jpg\n").unwrap();
        let list = PhotoList::open(&PhotoSource::List(t.path().join("list.txt"))).unwrap();
        let names: Vec<&str> = list.photos.iter().map(|p| p.image.as_str()).collect();
        assert_eq!(names, ["a.png", "b.jpg"]);
        // A missing photo is listed; reading it fails.
        assert!(matches!(list.read(0), Err(ImageLoadError::NotFound { .. })));

        std::fs::write(t.path().join("bad.txt"), "a.jpg\nnotes.doc\n").unwrap();
        let e = PhotoList::open(&PhotoSource::List(t.path().join("bad.txt"))).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("bad.txt") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn a_file_that_is_no_tar_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("photo.jpg");
        std::fs::write(&p, b"not a tar").unwrap();
        let e = PhotoList::open(&PhotoSource::Path(p)).unwrap_err();
        assert!(e.to_string().contains("tar archive"), "{e}");
    }
}
