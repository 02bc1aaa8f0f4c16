//! Test-only (cargo feature `fault-injection`, never in the shipped library): lets the C
//! fault tests make the next call, or the next reactor command, panic. Not in the header;
//! tests/c/fault/ declares it.

use crate::status::{call, sse_status, Failure};

/// 1: the next engine call panics; 2: the next command a reactor applies panics.
#[no_mangle]
pub extern "C" fn sse_test_arm_fault(point: u32) -> sse_status {
    call(|| {
        let fault = match point {
            1 => ::sse_engine::fault::Fault::NextCall,
            2 => ::sse_engine::fault::Fault::NextCommand,
            other => {
                return Err(Failure::new(
                    sse_status::SSE_ERR_INVALID_ARGUMENT,
                    format!("unknown fault point {other}"),
                ))
            }
        };
        ::sse_engine::fault::arm(fault);
        Ok(())
    })
}
