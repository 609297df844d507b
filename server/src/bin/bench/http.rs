//! A minimal HTTP/1.1 client over one keep-alive connection, as load
//! generators use: no pooling, no compression, so the figures measure the
//! server and not the client.

use anyhow::Context;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

pub struct Connection {
    stream: BufStream<TcpStream>,
    /// A session cookie sent with every request, as a signed-in page does.
    session: Option<String>,
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let socket = TcpStream::connect(addr).await?;
        // As HTTP clients such as the AWS SDKs' do.
        socket.set_nodelay(true)?;
        Ok(Connection {
            stream: BufStream::new(socket),
            session: None,
        })
    }

    /// Sends `cookie` and this server's own origin with every request.
    pub fn signed_in(mut self, cookie: &str) -> Connection {
        self.session = Some(cookie.to_string());
        self
    }

    /// Sends one request and reads the whole response (sized or chunked).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(cookie) = &self.session {
            head.push_str(&format!("Cookie: {cookie}\r\nOrigin: http://bench\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.stream.flush().await?;

        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no HTTP status in {line:?}"))?;
        let (mut length, mut chunked) = (0, false);
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse()?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            self.read_chunks().await?
        } else {
            let mut body = vec![0; length];
            self.stream.read_exact(&mut body).await?;
            body
        };
        Ok(Response { status, body })
    }

    async fn read_chunks(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            let start = body.len();
            body.resize(start + size, 0);
            self.stream.read_exact(&mut body[start..]).await?;
            line.clear();
            self.stream.read_line(&mut line).await?; // the chunk's CRLF
            if size == 0 {
                return Ok(body);
            }
        }
    }
}
