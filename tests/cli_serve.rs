//! `apollo serve` end to end: the real server on a free loopback port (`--port 0`, the port read
//! from its ready line), asked with the official `openai` Python client and with curl. Its
//! answers are `ask`'s and `chat`'s (text, token ids and log-probabilities), whole or streamed;
//! every refusal has its status and OpenAI's error shape; under load every request is answered
//! or refused with 429 and the server stays healthy and bounded; a client that goes away stops
//! its generation; SIGTERM lets the running request finish and exits 0.

mod common;

use common::server::{curl, curl_streaming, python, sse_data, Answer, Server};
use common::{apollo, run, tiny};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Greedy, short, with the top 2 log-probabilities: as tests/serve_client.py asks.
const GREEDY: [&str; 6] = [
    "--temperature",
    "0",
    "--max-new-tokens",
    "8",
    "--logprobs",
    "2",
];

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn parent(path: &Path) -> String {
    path.parent().unwrap().display().to_string()
}

/// A user message: the video, then the question.
fn about(url: &str, question: &str) -> Value {
    json!({"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": url}},
        {"type": "text", "text": question},
    ]})
}

/// A chat completions request of the tiny model with `messages` and the `extra` fields.
fn request(messages: Value, extra: Value) -> Value {
    let mut body = json!({"model": tiny(), "messages": messages});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// `POST path` with `body` (sent from a file: it may be larger than an argument may be).
fn post(server: &Server, path: &str, body: &str, headers: &[&str]) -> Answer {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(body.as_bytes()).unwrap();
    let mut args = vec!["-H".to_string(), "Content-Type: application/json".into()];
    for h in headers {
        args.extend(["-H".to_string(), h.to_string()]);
    }
    args.push(format!("{}{path}", server.base));
    args.push("--data-binary".into());
    args.push(format!("@{}", file.path().display()));
    curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn complete(server: &Server, body: &Value) -> Answer {
    post(server, "/v1/chat/completions", &body.to_string(), &[])
}

/// The answer's message text, after checking it is a 200 completion.
fn content(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["object"], "chat.completion");
    json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `apollo ask --json` on the tiny checkpoint: the record.
fn ask(video: &Path, question: &str, flags: &[&str]) -> Value {
    let r = run(apollo()
        .args(["ask", "--json", "--model-dir", &tiny()])
        .arg(video)
        .arg(question)
        .args(flags));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// An OpenAI error: the status, and `{"error": {"message", "type", "param", "code"}}` with
/// the message saying `says`; the error object.
fn refused(answer: &Answer, status: u16, kind: &str, says: &str) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{answer:?}"
    );
    let error = answer.json()["error"].clone();
    let mut keys: Vec<&String> = error.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "type"], "{error}");
    assert_eq!(error["type"], kind, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} does not say {says:?}");
    error
}

#[test]
fn the_openai_client_gets_asks_answers_whole_streamed_and_as_chats_conversation() {
    let video = common::real_video("bikes.mp4");
    let server = Server::start(&["--allowed-dir", &parent(&video)]);
    let questions = ["What is this?", "And then?", "Why?"];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_client.py");
    let out = Command::new(python())
        .arg(script)
        .args([&server.base, &tiny(), &file_url(&video)])
        .args(questions)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{:?}", server.log());
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["models"]["data"][0]["id"], tiny());

    let ask = ask(&video, questions[0], &GREEDY);
    let single = &out["single"];
    let choice = &single["choices"][0];
    assert_eq!(choice["message"]["content"], ask["answer"]);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], ask["finish"]);
    // Token ids, texts, bytes and log-probabilities, the top 2 of each: ask's entries.
    assert_eq!(choice["logprobs"]["content"], ask["logprobs"]);
    let usage = &single["usage"];
    assert_eq!(usage["prompt_tokens"], ask["tokens"]["prompt"]);
    assert_eq!(usage["completion_tokens"], ask["tokens"]["generated"]);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            ask["tokens"]["prompt"].as_u64().unwrap()
                + ask["tokens"]["generated"].as_u64().unwrap()
        )
    );
    assert_eq!(single["apollo"]["clips"], ask["clips"]);

    // Streamed: the same text piece by piece, the finish with the logprobs, then the usage.
    let chunks = out["stream"].as_array().unwrap();
    assert!(chunks.len() >= 4, "{chunks:?}");
    for chunk in chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, ask["answer"].as_str().unwrap());
    let (finish, last) = (&chunks[chunks.len() - 2], &chunks[chunks.len() - 1]);
    assert_eq!(finish["choices"][0]["finish_reason"], ask["finish"]);
    assert_eq!(finish["choices"][0]["logprobs"]["content"], ask["logprobs"]);
    assert_eq!(last["choices"], json!([]));
    for n in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(last["usage"][n], usage[n], "{n}");
    }

    // Each answer sent back as the client got it: `chat`'s conversation, turn by turn.
    let r = run(apollo()
        .args(["chat", "--json", "--model-dir", &tiny()])
        .arg(&video)
        .args(GREEDY)
        .write_stdin(questions.join("\n")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chat: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let turns = out["conversation"].as_array().unwrap();
    assert_eq!((turns.len(), chat.len()), (3, 3));
    for (turn, record) in turns.iter().zip(&chat) {
        let choice = &turn["choices"][0];
        assert_eq!(choice["message"]["content"], record["answer"]);
        assert_eq!(choice["logprobs"]["content"], record["logprobs"]);
        assert_eq!(turn["usage"]["prompt_tokens"], record["tokens"]["prompt"]);
    }
    // The follow-ups reuse the keys and values of the turns before, as `chat` does.
    for (turn, record) in turns.iter().zip(&chat).skip(1) {
        let reused = &turn["usage"]["prompt_tokens_details"]["cached_tokens"];
        assert_eq!(reused, &record["tokens"]["reused"]);
    }
}

#[test]
fn curl_gets_asks_answer_streamed_stopped_and_seeded() {
    let video = common::real_video("bikes.mp4");
    let server = Server::start(&["--allowed-dir", &parent(&video)]);
    let url = file_url(&video);
    let question = "What happens?";
    let messages = json!([about(&url, question)]);
    let greedy = json!({"temperature": 0, "max_tokens": 30});
    let ask_greedy = ask(
        &video,
        question,
        &["--temperature", "0", "--max-new-tokens", "30"],
    );
    let answer = ask_greedy["answer"].as_str().unwrap().to_string();
    let whole = complete(&server, &request(messages.clone(), greedy.clone()));
    assert_eq!(content(&whole), answer);
    assert_eq!(
        whole.json()["choices"][0]["finish_reason"],
        ask_greedy["finish"]
    );
    assert!(whole.json()["choices"][0]["logprobs"].is_null());

    // Streamed without include_usage: the role, the pieces, the finish, [DONE].
    let mut body = request(messages.clone(), greedy.clone());
    body["stream"] = json!(true);
    let out = curl_streaming(
        &format!("{}/v1/chat/completions", server.base),
        &body.to_string(),
    )
    .wait_with_output()
    .unwrap();
    let data = sse_data(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, answer);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        ask_greedy["finish"]
    );

    // `stop`: the answer ends before the first place a stop string appears. The stop string
    // is a run of ASCII letters of the answer's (text that decodes the same at every step).
    let at = answer
        .char_indices()
        .find(|&(i, c)| {
            i > 0
                && c.is_ascii_alphabetic()
                && !answer[..i].ends_with(|p: char| p.is_ascii_alphabetic())
        })
        .map(|(i, _)| i)
        .expect("the tiny model's answer has a word after its start");
    let word: String = answer[at..]
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    let cut = &answer[..answer.find(&word).unwrap()];
    let mut stopped = greedy.clone();
    stopped["stop"] = json!(["\u{1}never", word]);
    let answered = complete(&server, &request(messages.clone(), stopped));
    assert_eq!(
        content(&answered),
        cut.trim(),
        "stop {word:?} in {answer:?}"
    );
    assert_eq!(answered.json()["choices"][0]["finish_reason"], "stop");

    // `seed`: sampling with the same seed gives `ask --seed`'s answer, every time.
    let ask_seeded = ask(
        &video,
        question,
        &[
            "--temperature",
            "1",
            "--seed",
            "7",
            "--max-new-tokens",
            "12",
        ],
    );
    let seeded = request(
        messages.clone(),
        json!({"temperature": 1, "seed": 7, "max_tokens": 12}),
    );
    for _ in 0..2 {
        let answered = complete(&server, &seeded);
        assert_eq!(content(&answered), ask_seeded["answer"].as_str().unwrap());
        assert_eq!(answered.json()["apollo"]["seed"], 7);
    }
    // `max_completion_tokens` over `max_tokens`, and `n` of 1 is fine.
    let short = complete(
        &server,
        &request(
            messages,
            json!({"temperature": 0, "max_tokens": 30, "max_completion_tokens": 3, "n": 1}),
        ),
    );
    assert_eq!(short.json()["usage"]["completion_tokens"], 3);
    assert_eq!(short.json()["choices"][0]["finish_reason"], "length");
}

#[test]
fn the_server_shares_asks_encoded_video_cache_both_ways() {
    let cache = tempfile::tempdir().unwrap();
    let [first, second] = ["carphone_pristine.mp4", "bikes.mp4"].map(common::real_video);
    let greedy = ["--temperature", "0", "--max-new-tokens", "6"];
    let ask_cached = |video: &Path| {
        let r = run(common::apollo_cached(cache.path())
            .args(["ask", "--json", "--model-dir", &tiny()])
            .arg(video)
            .arg("What is this?")
            .args(greedy));
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).unwrap()
    };
    let asked = ask_cached(&first);
    assert_eq!(asked["cache"], "miss");
    let server = Server::start_cached(cache.path(), &["--allowed-dir", &parent(&first)]);
    let serve = |video: &Path| {
        let answer = complete(
            &server,
            &request(
                json!([about(&file_url(video), "What is this?")]),
                json!({"temperature": 0, "max_tokens": 6}),
            ),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    // What `ask` encoded, the server reads; what the server encodes, `ask` reads.
    let served = serve(&first);
    assert_eq!(served["apollo"]["cache"], "hit");
    assert_eq!(served["choices"][0]["message"]["content"], asked["answer"]);
    let served = serve(&second);
    assert_eq!(served["apollo"]["cache"], "miss");
    let asked = ask_cached(&second);
    assert_eq!(asked["cache"], "hit");
    assert_eq!(served["choices"][0]["message"]["content"], asked["answer"]);
}

/// A small synthetic video, a few kilobytes.
fn small_video(path: &Path) {
    common::synthetic(path, "64x64", "8", "2", &["-pix_fmt", "yuv420p"]);
}

fn data_url(bytes: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:video/mp4;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[test]
fn every_refusal_has_its_status_and_openais_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    let private = dir.path().join("private");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let small = videos.join("small.mp4");
    small_video(&small);
    std::fs::copy(&small, private.join("secret.mp4")).unwrap();
    common::bad_video(&videos);
    std::os::unix::fs::symlink(&private, videos.join("link")).unwrap();
    std::os::unix::fs::symlink(private.join("secret.mp4"), videos.join("s.mp4")).unwrap();
    let server = Server::start(&[
        "--allowed-dir",
        videos.to_str().unwrap(),
        "--api-key",
        "s3cret",
        "--max-request-size",
        "256K",
        "--max-video-size",
        "64K",
    ]);
    let key = "Authorization: Bearer s3cret";
    let send = |body: &Value| post(&server, "/v1/chat/completions", &body.to_string(), &[key]);
    let ask_about = |url: &str| {
        request(
            json!([about(url, "What is it?")]),
            json!({"temperature": 0, "max_tokens": 5}),
        )
    };

    // The API key: every route but /health needs it.
    let health = curl(&[&format!("{}/health", server.base)]);
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let models = format!("{}/v1/models", server.base);
    for headers in [
        vec![],
        vec!["-H", "Authorization: Bearer s3cre"],
        vec!["-H", "Authorization: Basic s3cret"],
    ] {
        let answer = curl(&[&headers[..], &[models.as_str()]].concat());
        refused(&answer, 401, "authentication_error", "API key");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    let listed = curl(&["-H", key, &models]);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["data"][0]["id"], tiny());
    let answer = post(
        &server,
        "/v1/chat/completions",
        &ask_about(&file_url(&small)).to_string(),
        &[],
    );
    refused(&answer, 401, "authentication_error", "API key");

    // A video inside the allowed directory, by path or as a data URL (the same answer).
    let by_path = content(&send(&ask_about(&file_url(&small))));
    let bytes = std::fs::read(&small).unwrap();
    assert!(bytes.len() < 48 << 10, "{} bytes", bytes.len());
    assert_eq!(content(&send(&ask_about(&data_url(&bytes)))), by_path);
    assert_eq!(content(&send(&ask_about(small.to_str().unwrap()))), by_path);

    let user = |content: Value| json!([{"role": "user", "content": content}]);
    let video_part = |url: &Path| json!({"type": "video_url", "video_url": {"url": file_url(url)}});
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            request(user(json!([video_part(&small)])), json!({"n": 2})),
            400,
            "invalid_request_error",
            "n: 2 choices",
        ),
        (
            request(
                user(json!([video_part(&small), video_part(&small)])),
                json!({}),
            ),
            400,
            "invalid_request_error",
            "one video per conversation",
        ),
        (
            request(user(json!("no video")), json!({})),
            400,
            "invalid_request_error",
            "no video",
        ),
        (
            request(
                user(json!([video_part(&small)])),
                json!({"temperature": 101}),
            ),
            400,
            "invalid_request_error",
            "temperature",
        ),
        (
            ask_about(&file_url(&videos.join("notes.mp4"))),
            400,
            "invalid_request_error",
            "notes.mp4",
        ),
        (
            ask_about(&file_url(&videos.join("missing.mp4"))),
            400,
            "invalid_request_error",
            "missing.mp4",
        ),
        (
            ask_about("videos/small.mp4"),
            400,
            "invalid_request_error",
            "absolute",
        ),
        (
            ask_about("/etc/passwd"),
            403,
            "permission_error",
            "--allowed-dir",
        ),
        (
            ask_about(&file_url(&videos.join("../private/secret.mp4"))),
            403,
            "permission_error",
            "--allowed-dir",
        ),
        (
            ask_about(&file_url(&videos.join("link/secret.mp4"))),
            403,
            "permission_error",
            "--allowed-dir",
        ),
        (
            ask_about(&file_url(&videos.join("s.mp4"))),
            403,
            "permission_error",
            "--allowed-dir",
        ),
        (
            ask_about("http://127.0.0.1:9/v.mp4"),
            403,
            "permission_error",
            "--allow-remote",
        ),
        (
            ask_about(&data_url(&vec![7u8; 100 << 10])),
            413,
            "invalid_request_error",
            "--max-video-size",
        ),
    ];
    for (body, status, kind, says) in cases {
        let answer = send(&body);
        refused(&answer, status, kind, says);
    }
    let mut other = ask_about(&file_url(&small));
    other["model"] = json!("gpt-4o");
    let error = refused(&send(&other), 404, "invalid_request_error", "gpt-4o");
    assert_eq!(error["code"], "model_not_found");
    // A conversation the model's context cannot hold (the tiny model's is 512 positions).
    let long = request(
        json!([about(&file_url(&small), &"why ".repeat(600))]),
        json!({}),
    );
    let error = refused(&send(&long), 400, "invalid_request_error", "shorten it");
    assert_eq!(error["code"], "context_length_exceeded");
    let error = refused(
        &send(&json!({"messages": "x"})),
        400,
        "invalid_request_error",
        "not a chat completions request",
    );
    assert!(error["param"].is_null());
    let answer = post(&server, "/v1/chat/completions", "{not json", &[key]);
    refused(
        &answer,
        400,
        "invalid_request_error",
        "not a chat completions request",
    );
    // A body over --max-request-size.
    let long = "a".repeat(300 << 10);
    let answer = send(&request(
        json!([about(&file_url(&small), &long)]),
        json!({}),
    ));
    refused(&answer, 413, "invalid_request_error", "--max-request-size");
    // Routes and methods.
    let base = &server.base;
    refused(
        &curl(&["-H", key, &format!("{base}/v1/completions")]),
        404,
        "invalid_request_error",
        "no such route",
    );
    refused(
        &curl(&["-H", key, &format!("{base}/v1/chat/completions")]),
        405,
        "invalid_request_error",
        "method",
    );
    refused(
        &curl(&["-H", key, "-X", "DELETE", &models]),
        405,
        "invalid_request_error",
        "method",
    );
    // Still serving after all that.
    assert_eq!(content(&send(&ask_about(&file_url(&small)))), by_path);
}

/// A loopback HTTP server for the test's files, `path -> bytes` (404 for others), answering
/// connections one at a time; its address.
fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or_default();
            let response = match files.iter().find(|(p, _)| *p == path) {
                Some((_, bytes)) => [
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .into_bytes(),
                    bytes.clone(),
                ]
                .concat(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = socket.write_all(&response);
        }
    });
    address
}

#[test]
fn remote_videos_are_fetched_only_with_allow_remote_and_within_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.mp4");
    small_video(&small);
    let big = std::fs::read(common::real_video("bikes.mp4")).unwrap();
    let remote = file_server(vec![
        ("/small.mp4", std::fs::read(&small).unwrap()),
        ("/big.mp4", big),
    ]);
    let server = Server::start(&[
        "-q",
        "--allowed-dir",
        dir.path().to_str().unwrap(),
        "--allow-remote",
        "--max-video-size",
        "64K",
    ]);
    let ask_about = |url: &str| {
        complete(
            &server,
            &request(
                json!([about(url, "What is it?")]),
                json!({"temperature": 0, "max_tokens": 5}),
            ),
        )
    };
    let by_path = content(&ask_about(&file_url(&small)));
    assert_eq!(content(&ask_about(&format!("{remote}/small.mp4"))), by_path);
    refused(
        &ask_about(&format!("{remote}/big.mp4")),
        413,
        "invalid_request_error",
        "--max-video-size",
    );
    refused(
        &ask_about(&format!("{remote}/gone.mp4")),
        400,
        "invalid_request_error",
        "HTTP 404",
    );
    refused(
        &ask_about("http://127.0.0.1:9/v.mp4"),
        400,
        "invalid_request_error",
        "cannot fetch",
    );
    // With -q: the ready line alone.
    let log = server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("apollo serve: ready at http://127.0.0.1:"),
        "{log:?}"
    );
}

#[test]
fn under_load_every_request_is_answered_or_refused_with_retry_after() {
    const CLIENTS: usize = 16;
    const EACH: usize = 4;
    let videos = [
        common::real_video("bikes.mp4"),
        common::real_video("carphone_pristine.mp4"),
    ];
    let server = Server::start(&["--allowed-dir", &parent(&videos[0]), "--max-queue", "2"]);
    let body = |n: usize| {
        request(
            json!([about(&file_url(&videos[n % 2]), "What is this?")]),
            json!({"temperature": 0, "max_tokens": 16}),
        )
        .to_string()
    };
    // Each video's answer, asked alone; then the memory at rest.
    let expected = [
        content(&complete(&server, &serde_json::from_str(&body(0)).unwrap())),
        content(&complete(&server, &serde_json::from_str(&body(1)).unwrap())),
    ];
    let rss_before = server.memory_kib("VmRSS");
    let start = Instant::now();
    let results: Vec<(usize, Answer, Duration)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (server, body) = (&server, &body);
                scope.spawn(move || {
                    (0..EACH)
                        .map(|k| {
                            let n = client + k;
                            let sent = Instant::now();
                            let answer = post(server, "/v1/chat/completions", &body(n), &[]);
                            (n % 2, answer, sent.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let wall = start.elapsed();
    assert_eq!(results.len(), CLIENTS * EACH);
    let (mut ok, mut busy) = (Vec::new(), Vec::new());
    for (video, answer, took) in &results {
        match answer.status {
            200 => {
                assert_eq!(content(answer), expected[*video]);
                ok.push(*took);
            }
            429 => {
                refused(answer, 429, "rate_limit_error", "busy");
                let retry: u64 = answer
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "{retry}");
                busy.push(*took);
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    assert!(
        !busy.is_empty(),
        "a queue of 2 and {CLIENTS} clients: some must be refused"
    );
    // The first to come, one running and two waiting, cannot have been refused.
    assert!(ok.len() >= 3, "{} answered", ok.len());
    let hwm = server.memory_kib("VmHWM");
    let rss_after = server.memory_kib("VmRSS");
    ok.sort();
    eprintln!(
        "load: {} requests in {wall:?}: {} answered (p50 {:?}, max {:?}), {} refused with 429 \
         (max {:?}); VmRSS {rss_before} KiB before, {rss_after} KiB after, VmHWM {hwm} KiB",
        results.len(),
        ok.len(),
        ok[ok.len() / 2],
        ok.last().unwrap(),
        busy.len(),
        busy.iter().max().unwrap(),
    );
    // Bounded: requests wait in a queue of 2, so memory does not grow with the clients.
    assert!(
        hwm < rss_before + (512 << 10),
        "VmHWM {hwm} KiB, {rss_before} KiB before"
    );
    // Healthy after, with the same answers.
    assert_eq!(curl(&[&format!("{}/health", server.base)]).status, 200);
    assert_eq!(
        content(&complete(&server, &serde_json::from_str(&body(0)).unwrap())),
        expected[0]
    );
}

/// Reads `child`'s stdout until `count` events with text have come.
fn read_events(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    count: usize,
) -> Vec<Value> {
    let mut events = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let event: Value = serde_json::from_str(data).unwrap();
        let text = event["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or_default();
        if !text.is_empty() {
            events.push(event);
        }
        if events.len() == count {
            break;
        }
    }
    events
}

/// How many stderr lines of `server` say `what` (a generation stopped, a queued request
/// skipped) because its client went away.
fn gone(server: &Server, what: &str) -> usize {
    server
        .log()
        .iter()
        .filter(|l| l.contains(&format!("the client went away{what}")))
        .count()
}

const STOPPED: &str = ": stopped after";
const SKIPPED: &str = " while queued: skipped";

fn wait_until(what: &str, limit: Duration, server: &Server, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "no {what} in {limit:?}: {:?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_goes_away_stops_its_generation() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::endless_checkpoint(dir.path());
    let model = model.to_str().unwrap();
    let video = common::real_video("bikes.mp4");
    let server = Server::start(&["--model-dir", model, "--allowed-dir", &parent(&video)]);
    let endless = |extra: Value| {
        let mut body = json!({
            "model": model,
            "messages": [about(&file_url(&video), "What is this?")],
            "temperature": 0,
            "max_tokens": 1_000_000,
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    let url = format!("{}/v1/chat/completions", server.base);
    // Mid-stream: a few pieces read, then the client is gone. Meanwhile another waited in
    // the queue and went away: it is skipped, never answered.
    let mut client = curl_streaming(&url, &endless(json!({"stream": true})));
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(read_events(&mut lines, 3).len(), 3);
    let status = Command::new("curl")
        .args(["-s", "--max-time", "2", &url, "-d", &endless(json!({}))])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(28), "curl timed out");
    assert_eq!(gone(&server, ""), 0, "{:?}", server.log());
    client.kill().unwrap();
    client.wait().unwrap();
    drop(lines);
    wait_until(
        "the stream stopped and the queued request skipped",
        Duration::from_secs(30),
        &server,
        || gone(&server, STOPPED) == 1 && gone(&server, SKIPPED) == 1,
    );
    // Waiting for a whole answer, then gone.
    let status = Command::new("curl")
        .args(["-s", "--max-time", "2", &url, "-d", &endless(json!({}))])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(28), "curl timed out");
    wait_until(
        "stop after the waiting client went away",
        Duration::from_secs(30),
        &server,
        || gone(&server, STOPPED) == 2,
    );
    // The model is free again at once.
    let start = Instant::now();
    let answer = post(
        &server,
        "/v1/chat/completions",
        &endless(json!({"max_tokens": 4})),
        &[],
    );
    assert_eq!(
        answer.json()["usage"]["completion_tokens"],
        4,
        "{}",
        answer.body
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        (gone(&server, STOPPED), gone(&server, SKIPPED)),
        (2, 1),
        "{:?}",
        server.log()
    );
}

#[test]
fn sigterm_lets_the_running_request_finish_then_exits_0() {
    const TOKENS: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let model = common::endless_checkpoint(dir.path());
    let model = model.to_str().unwrap();
    let video = common::real_video("bikes.mp4");
    let mut server = Server::start(&["--model-dir", model, "--allowed-dir", &parent(&video)]);
    let address = server.base.trim_start_matches("http://").to_string();
    let body = json!({
        "model": model,
        "messages": [about(&file_url(&video), "What is this?")],
        "temperature": 0,
        "max_tokens": TOKENS,
        "stream": true,
    });
    let mut client = curl_streaming(
        &format!("{}/v1/chat/completions", server.base),
        &body.to_string(),
    );
    let stdout = client.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(read_events(&mut lines, 1).len(), 1);
    server.signal("TERM");
    // New connections are refused while the request runs on.
    wait_until(
        "connections refused",
        Duration::from_secs(10),
        &server,
        || {
            TcpStream::connect(&address)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        },
    );
    assert!(
        !server.log().iter().any(|l| l.contains(": 200,")),
        "the request ended before the server stopped listening: make it longer"
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let data = sse_data(&rest.join("\n"));
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{:?}",
        server.log()
    );
    let finish: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["apollo"]["tokens"]["generated"], TOKENS);
    assert!(client.wait().unwrap().success());
    let status = server.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{:?}", server.log());
    let log = server.log();
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
    assert_eq!(
        log.last().map(String::as_str),
        Some("apollo serve: stopped"),
        "{log:?}"
    );
}

#[test]
fn bad_flags_are_usage_errors_before_anything_loads() {
    let file = common::real_video("bikes.mp4");
    for (args, says) in [
        (vec!["--allowed-dir", "/no/such/dir"], "--allowed-dir"),
        (
            vec!["--allowed-dir", file.to_str().unwrap()],
            "not a directory",
        ),
        (vec!["--api-key", ""], "--api-key"),
        (vec!["--max-queue", "0"], "--max-queue"),
        (vec!["--max-request-size", "lots"], "--max-request-size"),
        (vec!["--host", "256.0.0.1"], "cannot listen"),
    ] {
        let r = run(apollo()
            .args(["serve", "--port", "0", "--model-dir", &tiny()])
            .args(&args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let r = run(apollo().args(["serve", "--port", "0", "--model-dir", "/no/such/model"]));
    assert_eq!(r.code, 4, "{}", r.stderr);
}
