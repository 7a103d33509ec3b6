//! Reports for people: terminal pictures, and self-contained HTML pages with SVG charts.

pub mod analysis;
pub mod backtest;
pub mod calibration;
pub mod charts;
pub mod html;
pub mod judgement;
pub mod promotion;
pub mod promotion_text;
pub mod terminal;
pub mod tone;
