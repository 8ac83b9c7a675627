//! What a helper writes on stderr, read so that the helper cannot hurt the hub with it:
//! lines are cut at [`MAX_LINE`] bytes, at most [`MAX_LINES`] are passed on, and each is
//! logged as one escaped field, so a newline or a control character in it can never
//! forge a log line of the hub's.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longest line passed on, in bytes; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 1024;
/// Most lines passed on per helper run; what follows is read and dropped.
pub const MAX_LINES: usize = 1000;

/// Reads `stream` to its end, calling `line` with each of its first [`MAX_LINES`] lines
/// (cut to [`MAX_LINE`] bytes, lossily decoded, without the newline). Returns how many
/// lines were dropped.
pub async fn each_line<R: AsyncRead + Unpin>(stream: R, mut line: impl FnMut(&str)) -> usize {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::with_capacity(MAX_LINE + 1);
    let (mut seen, mut dropped) = (0usize, 0usize);
    loop {
        buf.clear();
        let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
        match (&mut r).take(limit).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return dropped,
            Ok(_) => {}
        }
        if !buf.ends_with(b"\n") && buf.len() > MAX_LINE && !skip_rest(&mut r).await {
            return dropped;
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        buf.truncate(MAX_LINE);
        seen += 1;
        if seen > MAX_LINES {
            dropped += 1;
            continue;
        }
        line(&String::from_utf8_lossy(&buf));
    }
}

/// Skips to the next newline; `false` at the end of the stream.
async fn skip_rest<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> bool {
    loop {
        let (found, used) = match r.fill_buf().await {
            Ok([]) | Err(_) => return false,
            Ok(chunk) => match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, chunk.len()),
            },
        };
        r.consume(used);
        if found {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_cut_counted_and_kept_apart() {
        let mut input = b"one\nlogin accepted user=root\r\n".to_vec();
        input.extend(vec![b'x'; 5000]);
        input.extend(b"\nafter\n");
        let mut got = Vec::new();
        let dropped = each_line(&input[..], |l| got.push(l.to_owned())).await;
        assert_eq!(dropped, 0);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1], "login accepted user=root");
        assert_eq!(got[2].len(), MAX_LINE);
        assert_eq!(got[3], "after");

        let flood = "y\n".repeat(MAX_LINES + 50);
        let mut n = 0;
        let dropped = each_line(flood.as_bytes(), |_| n += 1).await;
        assert_eq!((n, dropped), (MAX_LINES, 50));
    }
}
