//! Go's `net/rpc` envelope over gob, and the methods of protocol 1 (`spec/05-rpc.md`).
//!
//! On an RPC stream the client sends, for each call, a `Request{ServiceMethod string, Seq
//! uint64}` header value followed by the argument value; the server answers each call once, in
//! any order, with a `Response{ServiceMethod string, Seq uint64, Error string}` header followed
//! by the reply value, or by an empty struct when `Error` is set.
//!
//! This module owns the sans-I/O codecs for both ends of one stream ([`ClientCodec`],
//! [`ServerCodec`]), the table that matches replies to calls by `Seq` ([`CallTable`]), and the
//! typed calls and replies of protocol 1 ([`Call`], [`Reply`]): `LocalHooks.OnActivate(int64)`,
//! `LocalHooks.OnDeactivate(struct{})` and `LocalAPI.LoadPluginConfiguration(struct{}) ->
//! []byte`.
//!
//! Headers are read and written straight between bytes and [`RequestHeader`] or
//! [`ResponseHeader`] ([`Decoder::next_visiting`], [`Encoder::encode_parts`]), with the same
//! checks, in the same order, as [`RequestHeader::from_value`] and [`ResponseHeader::from_value`]
//! (RPC-3): one call costs no `Value` tree for its envelope.
//!
//! The ids Go's `net/rpc` gives its `Request`, `Response` and `struct{}` types ([`rpc_ids`],
//! GOB-8) are defined here, with the envelope that uses them; `gob::rpc_ids` re-exports them
//! for the paths that name them there, and [`TypeRegistry::net_rpc`] registers the three
//! definitions in the order that yields these ids.
//!
//! This file is longer than the others (about 940 lines): the envelope, the typed calls, the
//! call table and the two codecs share the private header reader (`HeaderFields`,
//! `EnvelopeReader`) and are kept together here; splitting them is left to a change of its own.

use std::fmt;

use thiserror::Error;

use crate::gob::{
    ids, Decoder, Encoder, Field, FieldRef, GobEncodeError, GobError, Part, TypeId, TypeRegistry,
    Value, Visited,
};

/// `LocalHooks.OnActivate`, served by the plugin.
pub const ON_ACTIVATE: &str = "LocalHooks.OnActivate";
/// `LocalHooks.OnDeactivate`, served by the plugin.
pub const ON_DEACTIVATE: &str = "LocalHooks.OnDeactivate";
/// `LocalAPI.LoadPluginConfiguration`, served by the host.
pub const LOAD_PLUGIN_CONFIGURATION: &str = "LocalAPI.LoadPluginConfiguration";

/// The ids of the types Go's `net/rpc` defines first in a process that has both a client and a
/// server (the order of the vectors in `spec/vectors/rpc-*.json`): `Request` 65, `Response` 66,
/// `struct{}` 67.
pub mod rpc_ids {
    use super::TypeId;
    /// `net/rpc.Request`.
    pub const REQUEST: TypeId = 65;
    /// `net/rpc.Response`.
    pub const RESPONSE: TypeId = 66;
    /// `struct{}`.
    pub const EMPTY_STRUCT: TypeId = 67;
}

/// A request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// `Service.Method`.
    pub service_method: String,
    /// The call's sequence number.
    pub seq: u64,
}

/// A response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// `Service.Method`, echoed from the request.
    pub service_method: String,
    /// The call's sequence number, echoed from the request.
    pub seq: u64,
    /// The error text; empty for success.
    pub error: String,
}

/// Why an RPC stream cannot go on. Every variant ends the stream (its pending calls fail).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The gob layer failed.
    #[error(transparent)]
    Gob(#[from] GobError),
    /// A header is not a struct, or one of its known fields has the wrong type.
    #[error("RPC-3: bad {which} header: {reason}")]
    BadHeader {
        /// "request" or "response".
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The stream ended between a header and its body.
    #[error("RPC-2: the stream ended after the header of call {seq} and before its body")]
    MissingBody {
        /// The call.
        seq: u64,
    },
}

impl RpcError {
    /// A stable, machine-readable name for the error.
    pub fn kind(&self) -> &'static str {
        match self {
            RpcError::Gob(e) => e.kind(),
            RpcError::BadHeader { .. } => "header_type_mismatch",
            RpcError::MissingBody { .. } => "missing_body",
        }
    }

    /// The id of the requirement the error enforces.
    pub fn requirement(&self) -> &'static str {
        match self {
            RpcError::Gob(e) => e.requirement(),
            RpcError::BadHeader { .. } => crate::req!("RPC-3"),
            RpcError::MissingBody { .. } => crate::req!("RPC-2"),
        }
    }
}

/// Why a value could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The value does not fit its type.
    #[error(transparent)]
    Encode(#[from] GobEncodeError),
}

fn check_struct(v: &Value, which: &'static str) -> Result<(), RpcError> {
    match v {
        Value::Struct { .. } => Ok(()),
        other => Err(RpcError::BadHeader {
            which,
            reason: format!("the header has kind {}; a struct is required", other.kind()),
        }),
    }
}

impl RequestHeader {
    /// Reads a request header from a decoded value: fields are matched by name, unknown fields
    /// ignored, and the struct may have any type name or id.
    pub fn from_value(v: &Value) -> Result<RequestHeader, RpcError> {
        check_struct(v, "request")?;
        <RequestHeader as Header>::from_fields(HeaderFields::of_value(v))
    }

    /// The header as the gob value a Go sender writes (zero fields omitted, GOB-12).
    pub fn to_value(&self) -> Value {
        Value::Struct {
            name: "Request".into(),
            fields: vec![
                Field {
                    name: "ServiceMethod".into(),
                    value: Value::string(&self.service_method),
                },
                Field {
                    name: "Seq".into(),
                    value: Value::Uint(self.seq),
                },
            ],
        }
    }
}

impl ResponseHeader {
    /// Reads a response header from a decoded value (see [`RequestHeader::from_value`]).
    pub fn from_value(v: &Value) -> Result<ResponseHeader, RpcError> {
        check_struct(v, "response")?;
        <ResponseHeader as Header>::from_fields(HeaderFields::of_value(v))
    }

    /// The header as the gob value a Go sender writes (zero fields omitted, GOB-12).
    pub fn to_value(&self) -> Value {
        Value::Struct {
            name: "Response".into(),
            fields: vec![
                Field {
                    name: "ServiceMethod".into(),
                    value: Value::string(&self.service_method),
                },
                Field {
                    name: "Seq".into(),
                    value: Value::Uint(self.seq),
                },
                Field {
                    name: "Error".into(),
                    value: Value::string(&self.error),
                },
            ],
        }
    }
}

/// A call of protocol 1, with its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `LocalHooks.OnActivate(api stream id)`.
    OnActivate {
        /// The API stream the host opened and serves `LocalAPI` on.
        api_stream: i64,
    },
    /// `LocalHooks.OnDeactivate(struct{})`.
    OnDeactivate,
    /// `LocalAPI.LoadPluginConfiguration(struct{})`.
    LoadPluginConfiguration,
}

impl Call {
    /// `Service.Method`.
    pub fn service_method(&self) -> &'static str {
        match self {
            Call::OnActivate { .. } => ON_ACTIVATE,
            Call::OnDeactivate => ON_DEACTIVATE,
            Call::LoadPluginConfiguration => LOAD_PLUGIN_CONFIGURATION,
        }
    }

    /// The argument as a gob value with its type id.
    pub fn argument(&self) -> (TypeId, Value) {
        match self {
            Call::OnActivate { api_stream } => (ids::INT, Value::Int(*api_stream)),
            Call::OnDeactivate | Call::LoadPluginConfiguration => {
                (rpc_ids::EMPTY_STRUCT, Value::empty_struct())
            }
        }
    }

    /// The typed call for a request to an endpoint that serves `services` (the plugin serves
    /// [`HOOKS_SERVICE`], the host [`API_SERVICE`]), or the error a server answers with
    /// (Table 5-9, R2 to R5).
    pub fn from_request(
        services: &[&str],
        service_method: &str,
        args: &Value,
    ) -> Result<Call, CallError> {
        // As Go: the service is everything before the last dot.
        let Some((service, method)) = service_method.rsplit_once('.') else {
            return Err(CallError::IllFormed(service_method.to_string()));
        };
        if !services.contains(&service) {
            return Err(CallError::UnknownService(service_method.to_string()));
        }
        let call = match (service, method) {
            (HOOKS_SERVICE, "OnActivate") => match args {
                Value::Int(i) => Call::OnActivate { api_stream: *i },
                other => return Err(CallError::ArgumentType(mismatch("*int64", other))),
            },
            (HOOKS_SERVICE, "OnDeactivate") => {
                expect_empty_struct(args).map_err(CallError::ArgumentType)?;
                Call::OnDeactivate
            }
            (API_SERVICE, "LoadPluginConfiguration") => {
                expect_empty_struct(args).map_err(CallError::ArgumentType)?;
                Call::LoadPluginConfiguration
            }
            _ => return Err(CallError::UnknownMethod(service_method.to_string())),
        };
        Ok(call)
    }
}

/// The service the plugin serves on its hooks stream.
pub const HOOKS_SERVICE: &str = "LocalHooks";
/// The service the host serves on the API stream.
pub const API_SERVICE: &str = "LocalAPI";

/// A request a server answers with an error response (`spec/05-rpc.md`, Table 5-9). Its
/// `Display` is the response's `Error` text: Go's own texts for R2 to R5 (RPC-9).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CallError {
    /// R2: the name has no dot.
    #[error("rpc: service/method request ill-formed: {0}")]
    IllFormed(String),
    /// R3: the service is not served here.
    #[error("rpc: can't find service {0}")]
    UnknownService(String),
    /// R4: the service has no such method.
    #[error("rpc: can't find method {0}")]
    UnknownMethod(String),
    /// R5: the argument has another type than the method's (Go's gob text).
    #[error("{0}")]
    ArgumentType(String),
    /// R6: `OnActivate` named an id that is not a new positive odd stream id (RPC-14).
    #[error(
        "RPC-14: OnActivate({id}) does not name a new host stream (a positive odd id above {last})"
    )]
    InvalidApiStreamId {
        /// The id received.
        id: i64,
        /// The largest API stream id accepted before (0 if none).
        last: i64,
    },
}

impl CallError {
    /// A stable, machine-readable name, as in Table 5-9.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::IllFormed(_) => "ill_formed_service_method",
            CallError::UnknownService(_) => "unknown_service",
            CallError::UnknownMethod(_) => "unknown_method",
            CallError::ArgumentType(_) => "argument_type_mismatch",
            CallError::InvalidApiStreamId { .. } => "invalid_api_stream_id",
        }
    }
}

/// The plugin's check of `OnActivate`'s argument (RPC-14): a positive odd id (one the host
/// allocates, STREAM-2) above `last`, the largest API stream id accepted before (0 if none).
pub fn check_api_stream(id: i64, last: i64) -> Result<crate::frame::StreamId, CallError> {
    match crate::frame::StreamId::new(id) {
        Some(sid) if sid.is_host_allocated() && id > last => Ok(sid),
        _ => Err(CallError::InvalidApiStreamId { id, last }),
    }
}

/// Go's name for the remote type of `got`, as its gob decoder prints it.
fn go_type_name(got: &Value) -> &str {
    match got {
        Value::Bytes(_) => "bytes",
        Value::Struct { name, .. } => name,
        other => other.kind(),
    }
}

/// Go's error text for a non-struct local type receiving another type.
fn mismatch(want: &str, got: &Value) -> String {
    format!(
        "gob: decoding into local type {want}, received remote type {}",
        go_type_name(got)
    )
}

/// Go's error text for a struct local type receiving a non-struct.
fn expect_empty_struct(args: &Value) -> Result<(), String> {
    match args {
        Value::Struct { .. } => Ok(()),
        _ => {
            Err("gob: type mismatch in decoder: want struct type struct {}; got non-struct".into())
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::OnActivate { api_stream } => write!(f, "{ON_ACTIVATE}({api_stream})"),
            other => write!(f, "{}(struct{{}}{{}})", other.service_method()),
        }
    }
}

/// A successful reply of protocol 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `struct{}{}`: the reply of the hooks.
    Empty,
    /// The configuration as JSON text: the reply of `LoadPluginConfiguration`.
    Configuration(Vec<u8>),
}

impl Reply {
    /// The reply as a gob value with its type id.
    pub fn value(&self) -> (TypeId, Value) {
        match self {
            Reply::Empty => (rpc_ids::EMPTY_STRUCT, Value::empty_struct()),
            Reply::Configuration(json) => (ids::BYTES, Value::Bytes(json.clone())),
        }
    }

    /// The typed reply of `call` from a reply value, or a description of the mismatch.
    pub fn for_call(call: &Call, value: &Value) -> Result<Reply, String> {
        match (call, value) {
            (Call::LoadPluginConfiguration, Value::Bytes(b)) => Ok(Reply::Configuration(b.clone())),
            (Call::LoadPluginConfiguration, other) => Err(mismatch("*[]uint8", other)),
            (_, Value::Struct { .. }) => Ok(Reply::Empty),
            (_, other) => expect_empty_struct(other).map(|_| Reply::Empty),
        }
    }
}

/// The calls a client has sent and not yet seen answered, by `Seq`: kept in `Seq` order in one
/// vector, whose allocation serves every later call (a client's `Seq`s only grow).
#[derive(Debug, Clone)]
pub struct CallTable<T> {
    pending: Vec<(u64, T)>,
}

impl<T> Default for CallTable<T> {
    fn default() -> Self {
        CallTable::new()
    }
}

impl<T> CallTable<T> {
    /// An empty table.
    pub fn new() -> CallTable<T> {
        CallTable {
            pending: Vec::new(),
        }
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        match self.pending.last() {
            // The common case: a new call, after every pending one.
            Some((last, _)) if *last < seq => Err(self.pending.len()),
            None => Err(0),
            _ => self.pending.binary_search_by_key(&seq, |(s, _)| *s),
        }
    }

    /// Records call `seq`; returns `false` (and keeps the old entry) if it is already pending.
    pub fn insert(&mut self, seq: u64, call: T) -> bool {
        match self.position(seq) {
            Ok(_) => false,
            Err(at) => {
                self.pending.insert(at, (seq, call));
                true
            }
        }
    }

    /// Takes call `seq` out of the table when its reply arrives.
    pub fn complete(&mut self, seq: u64) -> Option<T> {
        match self.position(seq) {
            Ok(at) => Some(self.pending.remove(at).1),
            Err(_) => None,
        }
    }

    /// Takes every pending call out, oldest first, to fail them.
    pub fn drain(&mut self) -> Vec<(u64, T)> {
        std::mem::take(&mut self.pending)
    }

    /// How many calls are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no call is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A request as a server receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The header.
    pub header: RequestHeader,
    /// The argument's type id (as the client defined it).
    pub args_type: TypeId,
    /// The argument.
    pub args: Value,
}

/// A response as a client receives it, matched to its call.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    /// The header.
    pub header: ResponseHeader,
    /// The call it answers, from the call table; `None` when no pending call has its `Seq` (the
    /// response is then to be ignored, as Go's client does).
    pub call: Option<T>,
    /// The reply value (an empty struct for an error).
    pub body: Value,
}

/// The known fields of a header struct, as received: for each, its value or the kind it had
/// instead of the one required. Filled from a decoded [`Value`] or from the fields
/// [`Decoder::next_visiting`] hands over, so that both paths make the same checks (RPC-3).
#[derive(Debug, Default)]
struct HeaderFields {
    service_method: Option<Result<String, &'static str>>,
    seq: Option<Result<u64, &'static str>>,
    error: Option<Result<String, &'static str>>,
}

/// A header field as [`HeaderFields`] needs it.
enum Received<'a> {
    Text(&'a [u8]),
    Uint(u64),
    /// Anything else, by kind.
    Other(&'static str),
}

impl HeaderFields {
    /// The fields of a struct value (none for any other value).
    fn of_value(v: &Value) -> HeaderFields {
        let mut h = HeaderFields::default();
        if let Value::Struct { fields, .. } = v {
            for f in fields {
                let received = match &f.value {
                    Value::String(b) => Received::Text(b),
                    Value::Uint(u) => Received::Uint(*u),
                    other => Received::Other(other.kind()),
                };
                h.take(&f.name, received);
            }
        }
        h
    }

    /// A field handed over by [`Decoder::next_visiting`].
    fn visit(&mut self, name: &str, value: FieldRef<'_>) {
        let received = match &value {
            FieldRef::String(b) => Received::Text(b),
            FieldRef::Uint(u) => Received::Uint(*u),
            other => Received::Other(other.kind()),
        };
        self.take(name, received);
    }

    /// Records a field; the first of a name counts, as for [`Value::field`].
    fn take(&mut self, name: &str, value: Received<'_>) {
        let slot = match name {
            "ServiceMethod" => &mut self.service_method,
            "Error" => &mut self.error,
            "Seq" => {
                if self.seq.is_none() {
                    self.seq = Some(match value {
                        Received::Uint(u) => Ok(u),
                        Received::Text(_) => Err("string"),
                        Received::Other(kind) => Err(kind),
                    });
                }
                return;
            }
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(match value {
                Received::Text(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                Received::Uint(_) => Err("uint"),
                Received::Other(kind) => Err(kind),
            });
        }
    }

    /// A string field's value (empty when not sent), or why the header is bad.
    fn text(
        field: Option<Result<String, &'static str>>,
        name: &str,
        which: &'static str,
    ) -> Result<String, RpcError> {
        match field {
            None => Ok(String::new()),
            Some(Ok(s)) => Ok(s),
            Some(Err(kind)) => Err(RpcError::BadHeader {
                which,
                reason: format!("{name} has kind {kind}; a string is required"),
            }),
        }
    }

    /// `Seq` (0 when not sent), or why the header is bad.
    fn uint(
        field: Option<Result<u64, &'static str>>,
        which: &'static str,
    ) -> Result<u64, RpcError> {
        match field {
            None => Ok(0),
            Some(Ok(u)) => Ok(u),
            Some(Err(kind)) => Err(RpcError::BadHeader {
                which,
                reason: format!("Seq has kind {kind}; a uint is required"),
            }),
        }
    }
}

/// The two headers of the envelope, read by [`EnvelopeReader`]: from a struct's visited
/// fields, or from a whole value (which is then not a struct: a bad header).
trait Header: Sized {
    fn parse(value: &Value) -> Result<Self, RpcError>;
    /// The header from a struct's fields, checked in a fixed order: `ServiceMethod`, `Seq`,
    /// then `Error`.
    fn from_fields(fields: HeaderFields) -> Result<Self, RpcError>;
    fn seq(&self) -> u64;
}

impl Header for RequestHeader {
    fn parse(value: &Value) -> Result<Self, RpcError> {
        RequestHeader::from_value(value)
    }
    fn from_fields(fields: HeaderFields) -> Result<Self, RpcError> {
        Ok(RequestHeader {
            service_method: HeaderFields::text(fields.service_method, "ServiceMethod", "request")?,
            seq: HeaderFields::uint(fields.seq, "request")?,
        })
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl Header for ResponseHeader {
    fn parse(value: &Value) -> Result<Self, RpcError> {
        ResponseHeader::from_value(value)
    }
    fn from_fields(fields: HeaderFields) -> Result<Self, RpcError> {
        Ok(ResponseHeader {
            service_method: HeaderFields::text(fields.service_method, "ServiceMethod", "response")?,
            seq: HeaderFields::uint(fields.seq, "response")?,
            error: HeaderFields::text(fields.error, "Error", "response")?,
        })
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// One direction of an RPC stream as header and body pairs (RPC-2), shared by both ends.
#[derive(Debug)]
struct EnvelopeReader<H> {
    decoder: Decoder,
    /// A header whose body has not arrived yet.
    pending: Option<H>,
    /// The error that ended the stream: every later call repeats it (GOB-18).
    failed: Option<RpcError>,
}

impl<H: Header> EnvelopeReader<H> {
    fn new(decoder: Decoder) -> Self {
        EnvelopeReader {
            decoder,
            pending: None,
            failed: None,
        }
    }

    /// Appends received bytes; after an error they are dropped.
    fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.decoder.push(bytes);
        }
    }

    /// The next header with its body's type id and value, or `Ok(None)` for more bytes.
    fn next(&mut self) -> Result<Option<(H, TypeId, Value)>, RpcError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.read().map_err(|e| self.fail(e))
    }

    fn read(&mut self) -> Result<Option<(H, TypeId, Value)>, RpcError> {
        loop {
            if let Some(header) = self.pending.take() {
                let Some((id, value)) = self.decoder.next_value()? else {
                    self.pending = Some(header);
                    return Ok(None);
                };
                return Ok(Some((header, id, value)));
            }
            // The header's fields are read straight from the bytes (no `Value` is built).
            let mut fields = HeaderFields::default();
            let Some((_, visited)) = self
                .decoder
                .next_visiting(&mut |name, value| fields.visit(name, value))?
            else {
                return Ok(None);
            };
            self.pending = Some(match visited {
                Visited::Fields => H::from_fields(fields)?,
                Visited::Value(value) => H::parse(&value)?,
            });
        }
    }

    fn fail(&mut self, e: RpcError) -> RpcError {
        self.failed = Some(e.clone());
        self.pending = None;
        e
    }

    /// The end of the stream: an error inside a message or between a header and its body, or
    /// the error that ended the stream before.
    fn finish(&mut self) -> Result<(), RpcError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.decoder.finish()?;
        match &self.pending {
            Some(h) => Err(RpcError::MissingBody { seq: h.seq() }),
            None => Ok(()),
        }
    }
}

/// The server end of one RPC stream: decodes requests, encodes responses.
#[derive(Debug)]
pub struct ServerCodec {
    reader: EnvelopeReader<RequestHeader>,
    encoder: Encoder,
}

impl Default for ServerCodec {
    fn default() -> Self {
        ServerCodec::new()
    }
}

impl ServerCodec {
    /// A server codec whose encoder uses Go's `net/rpc` type ids.
    pub fn new() -> ServerCodec {
        ServerCodec::with_decoder(Decoder::new())
    }

    /// A server codec around a configured decoder.
    pub fn with_decoder(decoder: Decoder) -> ServerCodec {
        ServerCodec {
            reader: EnvelopeReader::new(decoder),
            encoder: Encoder::new(TypeRegistry::net_rpc()),
        }
    }

    /// Appends bytes received on the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// How many gob uints read so far were longer than their minimal form: accepted (GOB-2),
    /// but a sender never writes them (GOB-1).
    pub fn non_minimal_uints(&self) -> u64 {
        self.reader.decoder.non_minimal_uints()
    }

    /// The next whole request, or `Ok(None)` when more bytes are needed.
    /// An error ends the stream (GOB-18): every later call, and `finish`, repeat it, and
    /// bytes pushed after it are dropped.
    pub fn next_request(&mut self) -> Result<Option<Request>, RpcError> {
        Ok(self
            .reader
            .next()?
            .map(|(header, args_type, args)| Request {
                header,
                args_type,
                args,
            }))
    }

    /// Reports the end of the stream: an error if it falls inside a message or between a
    /// header and its body.
    pub fn finish(&mut self) -> Result<(), RpcError> {
        self.reader.finish()
    }

    /// Appends the response to `request` (echoing its `ServiceMethod` and `Seq`): the reply
    /// value, or for an error the error text and an empty struct.
    ///
    /// An error response that would contain a message longer than GOB_MIN_MAX_MESSAGE
    /// (GOB-16), because of a long `ServiceMethod` echoed and repeated in the text (RPC-9), is
    /// sent shortened instead (RPC-21, Table 5-9 R12): the text cut to at most
    /// [`MAX_SHORTENED_ERROR`] bytes, and the `ServiceMethod` left empty if it still does not
    /// fit. A successful reply that is too long is an error for the caller, who sends an error
    /// response instead (GOB-16).
    pub fn respond(
        &mut self,
        request: &RequestHeader,
        result: Result<(TypeId, &Value), &str>,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let sent = self.respond_as(&request.service_method, request.seq, result, out);
        let Err(text) = result else {
            return sent;
        };
        if !matches!(
            sent,
            Err(SendError::Encode(GobEncodeError::MessageTooLong { .. }))
        ) {
            return sent;
        }
        let short = shorten(text, MAX_SHORTENED_ERROR);
        match self.respond_as(&request.service_method, request.seq, Err(short), out) {
            Err(SendError::Encode(GobEncodeError::MessageTooLong { .. })) => {
                self.respond_as("", request.seq, Err(short), out)
            }
            other => other,
        }
    }

    fn respond_as(
        &mut self,
        service_method: &str,
        seq: u64,
        result: Result<(TypeId, &Value), &str>,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let empty = Value::empty_struct();
        let (error, (id, body)) = match result {
            Ok(reply) => ("", reply),
            Err(text) => (text, (rpc_ids::EMPTY_STRUCT, &empty)),
        };
        // The header as `ResponseHeader::to_value` gives it, without building it.
        let header = [
            ("ServiceMethod", FieldRef::String(service_method.as_bytes())),
            ("Seq", FieldRef::Uint(seq)),
            ("Error", FieldRef::String(error.as_bytes())),
        ];
        self.encoder.encode_parts(
            &[
                (rpc_ids::RESPONSE, Part::Fields(&header)),
                (id, Part::Value(body)),
            ],
            out,
        )?;
        Ok(())
    }

    /// Appends the response to a typed call.
    pub fn respond_typed(
        &mut self,
        request: &RequestHeader,
        result: Result<&Reply, &str>,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        match result {
            Ok(reply) => {
                let (id, value) = reply.value();
                self.respond(request, Ok((id, &value)), out)
            }
            Err(e) => self.respond(request, Err(e), out),
        }
    }
}

/// The longest `Error` text of a response that [`ServerCodec::respond`] had to shorten
/// (RPC-21).
pub const MAX_SHORTENED_ERROR: usize = 1024;

/// `text` cut to at most `max` bytes, at a character boundary, never empty: a text that would
/// end up empty is replaced by a fixed one (RPC-7 requires a non-empty `Error`).
fn shorten(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match &text[..end] {
        "" => "rpc: the error text was too long to send",
        short => short,
    }
}

/// The client end of one RPC stream: encodes calls with increasing `Seq` from 0, decodes
/// responses and matches them to calls.
#[derive(Debug)]
pub struct ClientCodec<T> {
    reader: EnvelopeReader<ResponseHeader>,
    encoder: Encoder,
    next_seq: u64,
    calls: CallTable<T>,
}

impl<T> Default for ClientCodec<T> {
    fn default() -> Self {
        ClientCodec::new()
    }
}

impl<T> ClientCodec<T> {
    /// A client codec whose encoder uses Go's `net/rpc` type ids.
    pub fn new() -> ClientCodec<T> {
        ClientCodec::with_decoder(Decoder::new())
    }

    /// A client codec around a configured decoder.
    pub fn with_decoder(decoder: Decoder) -> ClientCodec<T> {
        ClientCodec {
            reader: EnvelopeReader::new(decoder),
            encoder: Encoder::new(TypeRegistry::net_rpc()),
            next_seq: 0,
            calls: CallTable::new(),
        }
    }

    /// The calls not yet answered.
    pub fn pending(&self) -> &CallTable<T> {
        &self.calls
    }

    /// Appends a call of `service_method` with `args` to `out`, records `call` under its `Seq`,
    /// and returns the `Seq`.
    pub fn call(
        &mut self,
        service_method: &str,
        args: (TypeId, &Value),
        call: T,
        out: &mut Vec<u8>,
    ) -> Result<u64, SendError> {
        let seq = self.next_seq;
        // The header as `RequestHeader::to_value` gives it, without building it.
        let header = [
            ("ServiceMethod", FieldRef::String(service_method.as_bytes())),
            ("Seq", FieldRef::Uint(seq)),
        ];
        self.encoder.encode_parts(
            &[
                (rpc_ids::REQUEST, Part::Fields(&header)),
                (args.0, Part::Value(args.1)),
            ],
            out,
        )?;
        self.next_seq += 1;
        self.calls.insert(seq, call);
        Ok(seq)
    }

    /// Appends bytes received on the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// How many gob uints read so far were longer than their minimal form: accepted (GOB-2),
    /// but a sender never writes them (GOB-1).
    pub fn non_minimal_uints(&self) -> u64 {
        self.reader.decoder.non_minimal_uints()
    }

    /// The next whole response, or `Ok(None)` when more bytes are needed.
    /// An error ends the stream (GOB-18): every later call, and `finish`, repeat it, and
    /// bytes pushed after it are dropped.
    pub fn next_response(&mut self) -> Result<Option<Response<T>>, RpcError> {
        Ok(self.reader.next()?.map(|(header, _, body)| Response {
            call: self.calls.complete(header.seq),
            header,
            body,
        }))
    }

    /// Reports the end of the stream; every pending call is then to be failed with
    /// [`ClientCodec::fail_pending`].
    pub fn finish(&mut self) -> Result<(), RpcError> {
        self.reader.finish()
    }

    /// Takes every pending call out of the table, to fail them.
    pub fn fail_pending(&mut self) -> Vec<(u64, T)> {
        self.calls.drain()
    }
}

impl ClientCodec<Call> {
    /// Appends a typed call of protocol 1 and returns its `Seq`.
    pub fn call_typed(&mut self, call: Call, out: &mut Vec<u8>) -> Result<u64, SendError> {
        let (id, value) = call.argument();
        self.call(call.service_method(), (id, &value), call, out)
    }
}
