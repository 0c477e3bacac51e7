//! Hostile bytes at the decode path of every RPC: for each method of
//! `ektp.v1.Registry`, `ektp.v1.PrintQueue` and `ektp.v1.PrintControl`
//! (listed from the file descriptor set, so a new RPC is covered the day it
//! is added), ~30 request bodies — empty, truncated varints, huge length
//! prefixes, bad wire types, invalid UTF-8, other messages, seeded random
//! bytes — sent raw over gRPC (a stream of one message for streaming
//! methods). Every answer must be OK, INVALID_ARGUMENT, or NOT_FOUND where
//! a well-formed request names something absent (a valid-looking NIK or job
//! id that was never recorded, a printer that is not this node's); the
//! servers must stay up; and etcd's revision must not move after any
//! rejection.

use ektp_proto::v1::*;
use ektp_proto::{FILE_DESCRIPTOR_SET, Message};
use ektp_tests::cluster::{Cluster, Node, Spec};
use prost::bytes::{Buf, BufMut};
use std::time::Duration;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

type Result<T = (), E = ektp_tests::Error> = std::result::Result<T, E>;

/// Sends and receives message bodies as they are: no protobuf on our side.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// One RPC method as the descriptor set declares it.
struct Method {
    path: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// Every method of the named `ektp.v1` services.
fn methods(services: &[&str]) -> Result<Vec<Method>> {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    let mut found = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "ektp.v1") {
        for service in file.service.iter().filter(|s| services.contains(&s.name())) {
            for method in &service.method {
                found.push(Method {
                    path: format!("/ektp.v1.{}/{}", service.name(), method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    Ok(found)
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The request bodies thrown at each method.
fn payloads(seed: u64) -> Vec<Vec<u8>> {
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],                                                     // the default message
        vec![0x00],                                                 // field number 0
        vec![0x80],                                                 // a lone continuation byte
        vec![0x08, 0x80, 0x80],                                     // truncated varint value
        [vec![0x08], vec![0xFF; 10], vec![0x01]].concat(),          // varint over 10 bytes
        vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, b'a'],             // 4 GiB length prefix
        vec![0x0A, 0x10, b'a'],                                     // length beyond the data
        vec![0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], // huge nested length
        vec![0x0E],                                                 // wire type 6
        vec![0x0F],                                                 // wire type 7
        vec![0x0B],                                                 // group never ended
        vec![0x0C],                                                 // end of a group never begun
        vec![0x0A, 0x02, 0xC3, 0x28],                               // invalid UTF-8 in field 1
        vec![0x12, 0x03, 0xFF, 0xFF, 0xFF],                         // garbage sub-message
        vec![0x10, 0xE7, 0x07], // field 2 = 999 (enum out of range)
        vec![
            0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ], // field 2 = -1
        vec![0x0D, 1, 2, 3, 4], // fixed32 where a string is
        vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8], // fixed64 where a string is
        // Valid-looking messages of the wrong type.
        AuthorizePrintRequest {
            nik: "3527014507900001".into(),
            outcome: 1,
            reason: "x".into(),
            request_id: "hostile-1".into(),
        }
        .encode_to_vec(),
        ClaimJobsRequest {
            fence: Some(Fence {
                leader_key: "/ektp/elsewhere/print/leader/1".into(),
                epoch: 1,
            }),
            max_jobs: 1,
            printer: "printer-1".into(),
            first_cards_first: true,
        }
        .encode_to_vec(),
        GetStatsRequest {}.encode_to_vec(),
        ListResidentsRequest {
            page_size: -5,
            page_token: "\u{0}".into(),
        }
        .encode_to_vec(),
        // 1 MiB of filler in a string field.
        [vec![0x0A, 0x80, 0x80, 0x40], vec![b'9'; 1 << 20]].concat(),
    ];
    let mut rng = Rng(seed | 1);
    for _ in 0..8 {
        let len = (rng.next() % 200) as usize + 1;
        cases.push(rng.bytes(len));
    }
    cases.push(rng.bytes(64 * 1024));
    cases
}

/// Sends one body to one method; the answer's status code.
async fn call(channel: Channel, method: &Method, body: Vec<u8>) -> Result<Code> {
    let mut grpc = Grpc::new(channel);
    grpc.ready().await?;
    let path: PathAndQuery = method.path.parse()?;
    let answer = match (method.client_streaming, method.server_streaming) {
        (false, false) => grpc
            .unary(Request::new(body), path, RawCodec)
            .await
            .map(|_| ()),
        (false, true) => grpc
            .server_streaming(Request::new(body), path, RawCodec)
            .await
            .map(|_| ()),
        (true, _) => {
            let requests = tokio_stream::iter([body]);
            match grpc.streaming(Request::new(requests), path, RawCodec).await {
                Err(status) => Err(status),
                // The request stream is read by the handler: its status is
                // the end of the answer stream.
                Ok(response) => {
                    let mut answers = response.into_inner();
                    loop {
                        match answers.message().await {
                            Ok(Some(_)) => continue,
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
            }
        }
    };
    Ok(match answer {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    })
}

/// Throws every payload at every method of `services` on `nodes` (in turn),
/// checking each answer and etcd's revision after each rejection.
async fn throw(cluster: &Cluster, nodes: &[&Node], services: &[&str]) -> Result<usize> {
    let methods = methods(services)?;
    assert!(!methods.is_empty(), "no methods found for {services:?}");
    let mut calls = 0;
    for (m, method) in methods.iter().enumerate() {
        for (i, body) in payloads(0x5EED + m as u64).into_iter().enumerate() {
            let node = nodes[(m + i) % nodes.len()];
            let before = cluster.etcd.revision().await?;
            let code = tokio::time::timeout(
                Duration::from_secs(15),
                call(node.channel().await?, method, body),
            )
            .await
            .map_err(|_| format!("{} case {i}: no answer in time", method.path))??;
            assert!(
                matches!(code, Code::Ok | Code::InvalidArgument | Code::NotFound),
                "{} case {i} on {}: answered {code:?}",
                method.path,
                node.address
            );
            if code == Code::InvalidArgument {
                assert_eq!(
                    cluster.etcd.revision().await?,
                    before,
                    "{} case {i}: a rejected request changed etcd",
                    method.path
                );
            } else if code == Code::NotFound {
                // A well-formed read of someone absent is answered and
                // audited: its audit entry is the only change allowed.
                let audit = format!("/ektp/{}/audit/", cluster.office);
                let changed = cluster.etcd.changed_since(before, &[audit]).await?;
                assert!(
                    changed.is_empty(),
                    "{} case {i}: a NOT_FOUND answer changed {changed:?}",
                    method.path
                );
            }
            calls += 1;
        }
    }
    for node in nodes {
        node.wait_ready(Duration::from_secs(5)).await?;
    }
    Ok(calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_at_every_rpc_are_rejected_as_invalid_argument_and_change_nothing() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    // A paused printer keeps the print leader from claiming, so nothing but
    // our own requests could move etcd's revision.
    let mut control = cluster.print_client(0).await?;
    control
        .pause_printer(PausePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;

    let registry: Vec<&Node> = cluster.registry.iter().collect();
    let print: Vec<&Node> = cluster.print.iter().collect();
    let calls = throw(&cluster, &registry, &["Registry", "PrintQueue"]).await?
        + throw(&cluster, &print, &["PrintControl"]).await?;
    assert!(calls >= 22 * 30, "only {calls} calls made");

    // Every process is still up and serving.
    for node in cluster.registry.iter().chain(cluster.print.iter()) {
        node.wait_ready(Duration::from_secs(5)).await?;
    }
    let mut client = cluster.registry_client(0).await?;
    client.get_stats(GetStatsRequest {}).await?;
    Ok(())
}
