//! A pprof `Profile` protobuf (github.com/google/pprof/proto/profile.proto),
//! hand-encoded: samples carry [allocations, bytes] per distinct stack.

use std::collections::HashMap;

use memray_analysis::{AllocationGroup, Frame, StackResolver};

/// Protobuf wire-format writer for the few field kinds a profile needs.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn uint(&mut self, field: u32, v: u64) {
        self.varint(u64::from(field) << 3);
        self.varint(v);
    }
    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }
    fn packed(&mut self, field: u32, values: &[u64]) {
        let mut inner = Message::default();
        for v in values {
            inner.varint(*v);
        }
        self.bytes(field, &inner.0);
    }
}

struct Strings {
    table: Vec<String>,
    ids: HashMap<String, u64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings {
            table: Vec::new(),
            ids: HashMap::new(),
        };
        s.id("");
        s
    }
    fn id(&mut self, s: &str) -> u64 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.table.len() as u64;
        self.table.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }
}

fn value_type(strings: &mut Strings, kind: &str, unit: &str) -> Vec<u8> {
    let mut m = Message::default();
    m.uint(1, strings.id(kind));
    m.uint(2, strings.id(unit));
    m.0
}

/// The uncompressed profile.
pub fn encode(groups: &[AllocationGroup], stacks: &dyn StackResolver) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut profile = Message::default();
    for (kind, unit) in [("allocations", "count"), ("space", "bytes")] {
        let vt = value_type(&mut strings, kind, unit);
        profile.bytes(1, &vt);
    }
    // One location (and function) per distinct frame; ids start at 1.
    let mut locations: HashMap<Frame, u64> = HashMap::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    let mut function_msgs = Vec::new();
    for group in groups {
        let stack = stacks.stack((&group.allocation).into());
        let mut ids = Vec::with_capacity(stack.len());
        for frame in stack {
            let next = locations.len() as u64 + 1;
            let location_id = *locations.entry(frame.clone()).or_insert_with(|| {
                let key = (frame.function.to_string(), frame.filename.to_string());
                let next_fn = functions.len() as u64 + 1;
                let function_id = *functions.entry(key).or_insert_with(|| {
                    let mut f = Message::default();
                    f.uint(1, next_fn);
                    f.uint(2, strings.id(&frame.function));
                    f.uint(3, strings.id(&frame.function));
                    f.uint(4, strings.id(&frame.filename));
                    function_msgs.push(f.0);
                    next_fn
                });
                let mut line = Message::default();
                line.uint(1, function_id);
                line.uint(2, frame.lineno.max(0) as u64);
                let mut loc = Message::default();
                loc.uint(1, next);
                loc.bytes(4, &line.0);
                location_msgs.push(loc.0);
                next
            });
            ids.push(location_id);
        }
        let mut sample = Message::default();
        sample.packed(1, &ids);
        sample.packed(2, &[group.n_allocations, group.size]);
        profile.bytes(2, &sample.0);
    }
    for loc in &location_msgs {
        profile.bytes(4, loc);
    }
    for f in &function_msgs {
        profile.bytes(5, f);
    }
    let period_type = value_type(&mut strings, "space", "bytes");
    for s in &strings.table {
        profile.bytes(6, s.as_bytes());
    }
    profile.bytes(11, &period_type);
    profile.0
}
