//! The header of a saved Automerge document, read without loading the document, and the
//! change chunks a sync message carries back to back (cut apart, and parsed once for a room
//! to apply and store).
//!
//! Automerge's chunk parser is private, so the few fields needed here are read by hand,
//! following the binary format: the magic bytes, a 4-byte checksum, the chunk type (0 for a
//! document, 1 for a change, 2 for a compressed change), the chunk's length (LEB128), then
//! for a document the actors (a count, each a length and its bytes) and the heads (a count,
//! each 32 bytes). The tests check the result against Automerge's own `save`, `get_heads`
//! and changes.

use automerge::{Change, ChangeHash};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED: u8 = 2;

/// The heads of `bytes` if they are exactly one saved Automerge document (the magic bytes,
/// a checksum, the document chunk type and a length that covers the rest), sorted; `None`
/// for anything else (a change, several chunks, a truncated one). The checksum is not
/// verified: this says what a chunk claims, and loading it checks it.
pub fn document_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if bytes.len() < 10 || bytes[..4] != MAGIC || bytes[8] != DOCUMENT {
        return None;
    }
    let mut at = 9;
    let length = usize::try_from(leb128(bytes, &mut at)?).ok()?;
    if at.checked_add(length) != Some(bytes.len()) {
        return None;
    }
    let actors = leb128(bytes, &mut at)?;
    for _ in 0..actors {
        let len = usize::try_from(leb128(bytes, &mut at)?).ok()?;
        at = at.checked_add(len).filter(|&end| end <= bytes.len())?;
    }
    let mut heads = hashes(bytes, &mut at)?;
    heads.sort();
    Some(heads)
}

/// `bytes` cut into the change chunks they hold back to back (how a sync message carries
/// changes), each with its header; `None` if anything in them is not a whole change chunk.
pub fn change_chunks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let rest = &bytes[start..];
        if rest.len() < 10 || rest[..4] != MAGIC || !matches!(rest[8], CHANGE | COMPRESSED) {
            return None;
        }
        let mut at = 9;
        let length = usize::try_from(leb128(rest, &mut at)?).ok()?;
        let end = at.checked_add(length).filter(|&end| end <= rest.len())?;
        chunks.push(&rest[..end]);
        start += end;
    }
    Some(chunks)
}

/// The changes a sync message carries (`chunks`, each one or more change chunks back to
/// back), parsed and verified as Automerge's own load does: each chunk's checksum against
/// the change's hash, each change's operations decoded. `None` if anything in them is not
/// an uncompressed change chunk that passes, so that the caller hands the message to
/// Automerge, which takes in (or refuses) anything else.
pub fn parse_changes<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<Change>> {
    let mut changes = Vec::new();
    for chunk in chunks {
        for piece in change_chunks(chunk)? {
            if piece[8] != CHANGE {
                return None;
            }
            let change = Change::from_bytes(piece.to_vec()).ok()?;
            if piece[4..8] != change.hash().0[..4] {
                return None;
            }
            changes.push(change);
        }
    }
    Some(changes)
}

/// The hash and dependencies of each change `bytes` carries back to back, read without
/// decoding the changes' operations: a change's hash is the SHA-256 of its chunk from the
/// type byte on, and its dependencies open the change. What a device needs to work out the
/// heads a message brings it to (the bench's simulated devices do, before deciding whether
/// to apply it). `None` if anything in `bytes` is not an uncompressed change chunk whose
/// checksum matches that hash. Cheap beside [`parse_changes`]: it hashes the bytes once
/// and reads a few dozen of them, where parsing a chronology entry decodes hundreds of
/// operations.
pub fn change_headers(bytes: &[u8]) -> Option<Vec<(ChangeHash, Vec<ChangeHash>)>> {
    use sha2::{Digest, Sha256};
    let mut headers = Vec::new();
    for piece in change_chunks(bytes)? {
        if piece[8] != CHANGE {
            return None;
        }
        let hash: [u8; 32] = Sha256::digest(&piece[8..]).into();
        if piece[4..8] != hash[..4] {
            return None;
        }
        let mut at = 9;
        leb128(piece, &mut at)?;
        headers.push((ChangeHash(hash), hashes(piece, &mut at)?));
    }
    Some(headers)
}

/// Whether `bytes` are exactly one saved Automerge document.
pub fn is_whole_document(bytes: &[u8]) -> bool {
    document_heads(bytes).is_some()
}

/// A count (LEB128) and that many 32-byte change hashes at `*at`, in the order written,
/// moving `*at` past them: a document's heads, a change's dependencies.
fn hashes(bytes: &[u8], at: &mut usize) -> Option<Vec<ChangeHash>> {
    let count = leb128(bytes, at)?;
    let mut hashes = Vec::new();
    for _ in 0..count {
        let hash: [u8; 32] = bytes.get(*at..at.checked_add(32)?)?.try_into().ok()?;
        hashes.push(ChangeHash(hash));
        *at += 32;
    }
    Some(hashes)
}

/// An unsigned LEB128 number at `*at`, moving `*at` past it.
fn leb128(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let (mut value, mut shift) = (0u64, 0u32);
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        if shift > 56 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::AutoCommit;
    use automerge::transaction::Transactable;

    fn document(actors: usize, changes: usize) -> AutoCommit {
        let mut docs: Vec<AutoCommit> = (0..actors).map(|_| AutoCommit::new()).collect();
        for n in 0..changes {
            let doc = &mut docs[n % actors];
            doc.put(automerge::ROOT, format!("k{n}"), n as i64).unwrap();
            doc.commit();
        }
        // Merge concurrent edits so the document has several heads.
        let mut merged = docs.pop().unwrap();
        for mut other in docs {
            merged.merge(&mut other).unwrap();
        }
        merged
    }

    /// A document of three writers' twelve changes, its changes, and their bytes back to
    /// back as a sync message carries them.
    fn changes_back_to_back() -> (AutoCommit, Vec<Change>, Vec<u8>) {
        let mut doc = document(3, 12);
        let changes = doc.get_changes(&[]);
        let joined = changes
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        (doc, changes, joined)
    }

    #[test]
    fn the_heads_are_read_as_automerge_wrote_them() {
        for (actors, changes) in [(1, 1), (1, 30), (3, 10), (5, 200)] {
            let mut doc = document(actors, changes);
            let mut heads = doc.get_heads();
            heads.sort();
            assert!(!heads.is_empty());
            assert_eq!(document_heads(&doc.save()), Some(heads), "{actors} actors");
        }
        assert_eq!(document_heads(&AutoCommit::new().save()), Some(Vec::new()));
    }

    #[test]
    fn only_exactly_one_saved_document_counts_as_whole() {
        let mut doc = document(2, 3);
        let saved = doc.save();
        assert!(is_whole_document(&saved));
        assert!(!is_whole_document(&saved[..saved.len() - 1]), "truncated");
        assert!(
            !is_whole_document(&[saved.clone(), saved.clone()].concat()),
            "two"
        );
        let change = doc.get_changes(&[])[0].raw_bytes().to_vec();
        assert!(!is_whole_document(&change), "a change chunk");
        assert!(!is_whole_document(&[0x85, 0x6f, 0x4a, 0x83, 0, 0]));
        // A header that claims more actors or heads than the bytes hold.
        let mut lying = saved[..10].to_vec();
        lying.extend([0xff, 0x01]);
        assert!(document_heads(&lying).is_none());
    }

    #[test]
    fn changes_back_to_back_are_cut_where_automerge_wrote_them() {
        let (mut doc, changes, joined) = changes_back_to_back();
        let cut = change_chunks(&joined).expect("only change chunks");
        assert_eq!(cut.len(), changes.len());
        for (piece, change) in cut.iter().zip(&changes) {
            assert_eq!(*piece, change.raw_bytes());
        }
        assert_eq!(change_chunks(&[]), Some(Vec::new()));
        assert!(
            change_chunks(&joined[..joined.len() - 1]).is_none(),
            "truncated"
        );
        assert!(change_chunks(&doc.save()).is_none(), "a document");
        let with_document = [joined.clone(), doc.save()].concat();
        assert!(
            change_chunks(&with_document).is_none(),
            "a document after changes"
        );
    }

    #[test]
    fn change_headers_give_each_change_its_hash_and_dependencies_as_automerge_does() {
        let (mut doc, _, _) = changes_back_to_back();
        // A change made after the merge depends on the three writers' last changes.
        doc.put(automerge::ROOT, "after", 1).unwrap();
        doc.commit();
        let changes = doc.get_changes(&[]);
        assert_eq!(changes.last().map(|c| c.deps().len()), Some(3));
        let joined: Vec<u8> = changes
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let headers = change_headers(&joined).expect("change chunks");
        let expected: Vec<(ChangeHash, Vec<ChangeHash>)> = changes
            .iter()
            .map(|c| (c.hash(), c.deps().to_vec()))
            .collect();
        assert_eq!(headers, expected);
        assert_eq!(change_headers(&[]), Some(Vec::new()));
        // A damaged byte anywhere in a change breaks its checksum.
        let mut damaged = joined.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 1;
        assert!(change_headers(&damaged).is_none());
        assert!(change_headers(&doc.save()).is_none(), "a document");
    }

    #[test]
    fn carried_changes_are_parsed_as_automerge_loads_them() {
        let (mut doc, changes, joined) = changes_back_to_back();
        let one_each: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
        for chunks in [vec![joined.clone()], one_each] {
            let parsed = parse_changes(chunks.iter().map(Vec::as_slice)).expect("changes");
            assert_eq!(parsed, changes);
        }
        // A change whose key was altered on the way ("visit" to "vis1t"): it still decodes,
        // but its checksum no longer matches its hash. Automerge's load takes nothing of it,
        // and it is not parsed here either.
        let mut lone = AutoCommit::new();
        lone.put(automerge::ROOT, "visit", 1).unwrap();
        let mut altered = lone.get_changes(&[])[0].raw_bytes().to_vec();
        let at = altered
            .windows(5)
            .position(|w| w == b"visit")
            .expect("the key");
        altered[at + 3] = b'1';
        assert!(Change::from_bytes(altered.clone()).is_ok(), "it decodes");
        let mut other = document(1, 1);
        let heads = other.get_heads();
        let _ = other.load_incremental(&altered);
        assert_eq!(other.get_heads(), heads, "Automerge took none of it");
        assert!(parse_changes([altered.as_slice()]).is_none());
        assert!(
            parse_changes([doc.save().as_slice()]).is_none(),
            "a document"
        );
        assert_eq!(parse_changes([]), Some(Vec::new()));
    }
}
