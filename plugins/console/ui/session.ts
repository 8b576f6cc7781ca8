// The API key lives in this tab's session storage only: never in a URL, a cookie or local storage, so it
// goes when the tab closes and is sent only as the X-API-Key header (api.ts).

const KEY = 'tuft.apiKey'

export const savedKey = (): string | null => sessionStorage.getItem(KEY)
export const saveKey = (key: string): void => sessionStorage.setItem(KEY, key)
export const forgetKey = (): void => sessionStorage.removeItem(KEY)
