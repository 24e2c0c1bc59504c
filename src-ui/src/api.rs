//! Calls into the app shell (`window.__TAURI__`), typed by `fieldlog-app-api`.

use fieldlog_app_api::{CommandError, ErrorKind, FILE_NAME_HEADER, StagedPhoto, SyncState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue, options: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], js_name = listen, catch)]
    async fn tauri_listen(
        event: &str,
        handler: &Closure<dyn FnMut(JsValue)>,
    ) -> Result<JsValue, JsValue>;
}

/// Commands take one argument, `args`.
#[derive(Serialize)]
struct Args<'a, A> {
    args: &'a A,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, CommandError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| CommandError::new(ErrorKind::BadResponse, e.to_string()))
}

fn answer<R: DeserializeOwned>(result: Result<JsValue, JsValue>) -> Result<R, CommandError> {
    match result {
        Ok(value) => serde_wasm_bindgen::from_value(value)
            .map_err(|e| CommandError::new(ErrorKind::BadResponse, e.to_string())),
        Err(error) => Err(
            serde_wasm_bindgen::from_value::<CommandError>(error.clone()).unwrap_or_else(|_| {
                CommandError::new(
                    ErrorKind::Storage,
                    error.as_string().unwrap_or_else(|| format!("{error:?}")),
                )
            }),
        ),
    }
}

/// Runs command `cmd` with `args`.
pub async fn call<A: Serialize, R: DeserializeOwned>(
    cmd: &str,
    args: &A,
) -> Result<R, CommandError> {
    let args = to_js(&Args { args })?;
    answer(tauri_invoke(cmd, args, JsValue::UNDEFINED).await)
}

/// Runs a command that takes no arguments.
pub async fn call0<R: DeserializeOwned>(cmd: &str) -> Result<R, CommandError> {
    answer(tauri_invoke(cmd, JsValue::UNDEFINED, JsValue::UNDEFINED).await)
}

/// Sends a picked photo's bytes as the raw body of `stage_photo`.
pub async fn stage_photo(file: &web_sys::File) -> Result<StagedPhoto, CommandError> {
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| CommandError::new(ErrorKind::FileUnreadable, format!("{e:?}")))?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    // Headers must be ASCII; the shell only needs the extension.
    let name = file.name();
    let extension: String = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .unwrap_or("jpg")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let headers = js_sys::Object::new();
    js_sys::Reflect::set(
        &headers,
        &FILE_NAME_HEADER.into(),
        &format!("photo.{extension}").into(),
    )
    .map_err(|e| CommandError::new(ErrorKind::BadPhoto, format!("{e:?}")))?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"headers".into(), &headers)
        .map_err(|e| CommandError::new(ErrorKind::BadPhoto, format!("{e:?}")))?;
    answer(
        tauri_invoke(
            fieldlog_app_api::cmd::STAGE_PHOTO,
            bytes.into(),
            options.into(),
        )
        .await,
    )
}

/// Calls `on_state` with every sync state the shell emits, for the life of the page.
pub async fn listen_sync(on_state: impl Fn(SyncState) + 'static) {
    listen(fieldlog_app_api::SYNC_EVENT, on_state).await;
}

/// Calls `on_event` with the payload of every `event` the shell emits, for the life of the
/// page.
pub async fn listen<T: DeserializeOwned + 'static>(event: &str, on_event: impl Fn(T) + 'static) {
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let payload = js_sys::Reflect::get(&event, &"payload".into()).unwrap_or(JsValue::NULL);
        if let Ok(payload) = serde_wasm_bindgen::from_value::<T>(payload) {
            on_event(payload);
        }
    });
    if tauri_listen(event, &handler).await.is_ok() {
        // The listener lives as long as the page.
        handler.forget();
    }
}
