//! ECharts (loaded by the desk page as `window.echarts`) through wasm-bindgen: a chart is a
//! `<div>` and an option object built as JSON; a click on a bar or slice calls back with
//! its category.

use leptos::html::Div;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// An ECharts instance.
    #[derive(Debug, Clone)]
    pub type EChart;

    #[wasm_bindgen(js_namespace = echarts, js_name = init, catch)]
    fn echarts_init(
        element: &web_sys::HtmlElement,
        theme: &JsValue,
        options: &JsValue,
    ) -> Result<EChart, JsValue>;

    #[wasm_bindgen(method, js_name = setOption)]
    fn set_option(this: &EChart, option: &JsValue, not_merge: bool);

    #[wasm_bindgen(method)]
    fn on(this: &EChart, event: &str, handler: &Closure<dyn FnMut(JsValue)>);

    #[wasm_bindgen(method)]
    fn resize(this: &EChart);

    #[wasm_bindgen(method)]
    fn dispose(this: &EChart);
}

/// What was clicked: the series' id and the index of the bar or slice in its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartClick {
    pub series: String,
    pub index: usize,
}

fn to_js(option: &serde_json::Value) -> JsValue {
    option
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::NULL)
}

use serde::Serialize;

/// A chart of `option` (an ECharts option object), redrawn whenever it changes. `label`
/// names the chart for screen readers.
#[component]
pub fn Chart(
    #[prop(into)] option: Signal<serde_json::Value>,
    #[prop(into)] id: String,
    #[prop(into)] label: Signal<String>,
    #[prop(optional, into)] on_click: Option<Callback<ChartClick>>,
) -> impl IntoView {
    let node = NodeRef::<Div>::new();
    let chart: StoredValue<Option<EChart>, LocalStorage> = StoredValue::new_local(None);
    Effect::new(move |_| {
        let option = option.get();
        let Some(element) = node.get() else { return };
        if chart.with_value(Option::is_none) {
            let init = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&init, &"renderer".into(), &"svg".into());
            let Ok(created) = echarts_init(&element, &JsValue::NULL, &init) else {
                tracing_warn("ECharts is not loaded");
                return;
            };
            if let Some(on_click) = on_click {
                let handler = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                    let text = |key: &str| {
                        js_sys::Reflect::get(&event, &key.into())
                            .ok()
                            .and_then(|v| v.as_string())
                            .unwrap_or_default()
                    };
                    let index = js_sys::Reflect::get(&event, &"dataIndex".into())
                        .ok()
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0);
                    on_click.run(ChartClick {
                        series: text("seriesId"),
                        index: index as usize,
                    });
                });
                created.on("click", &handler);
                // The handler lives as long as the chart; ECharts drops it on dispose.
                handler.forget();
            }
            chart.set_value(Some(created));
        }
        chart.with_value(|c| {
            if let Some(c) = c {
                c.set_option(&to_js(&option), true);
            }
        });
    });
    // Follow the window's width (the desk works at 1024 and 1280 px and above).
    let resize = window_event_listener(leptos::ev::resize, move |_| {
        chart.with_value(|c| {
            if let Some(c) = c {
                c.resize();
            }
        });
    });
    on_cleanup(move || {
        resize.remove();
        chart.with_value(|c| {
            if let Some(c) = c {
                c.dispose();
            }
        });
    });
    view! { <div class="chart" id=id node_ref=node role="img" aria-label=move || label.get()></div> }
}

fn tracing_warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}
