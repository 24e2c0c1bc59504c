//! The figures a bureau publishes. The same rules hold wherever they are computed:
//! deleted visits and merged duplicates never count, a school counts once per period,
//! audience is everyone counted, lectures are the visits that include a lecture.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub visits: u64,
    pub schools_reached: u64,
    pub rural_schools: u64,
    pub urban_schools: u64,
    pub audience: u64,
    pub lectures: u64,
    pub books: u64,
    pub kits: u64,
}
